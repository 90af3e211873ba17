/** The arithmetic of cluster mode: shares, balancing steps, and splitting a node's slices among workers. */
import { describe, expect, it } from "vitest";
import { balance, preference, shares, splitSlices, type NodeView } from "../../src/master/cluster-balance.js";

const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

describe("shares", () => {
  it("splits the slices about equally, and always hands out all of them", () => {
    expect(shares([{ name: "a", weight: 1 }], 16)).toEqual(new Map([["a", 16]]));
    expect(
      shares(
        ["a", "b"].map((name) => ({ name, weight: 1 })),
        16,
      ),
    ).toEqual(
      new Map([
        ["a", 8],
        ["b", 8],
      ]),
    );
    const three = shares(
      ["c", "a", "b"].map((name) => ({ name, weight: 1 })),
      16,
    );
    expect(sum(three)).toBe(16);
    expect([...three.values()].sort()).toEqual([5, 5, 6]);
    // ties go by name, so every node computes the same answer
    expect(three.get("a")).toBe(6);
    for (let n = 1; n <= 20; n++)
      for (const count of [1, 2, 7, 16, 64]) {
        const m = shares(
          Array.from({ length: n }, (_, i) => ({ name: `n${i}`, weight: 1 })),
          count,
        );
        expect(sum(m)).toBe(count);
        const v = [...m.values()];
        expect(Math.max(...v) - Math.min(...v)).toBeLessThanOrEqual(1);
      }
  });

  it("follows the weights, rounding by largest remainder", () => {
    const m = shares(
      [
        { name: "big", weight: 3 },
        { name: "small", weight: 1 },
      ],
      16,
    );
    expect(m).toEqual(
      new Map([
        ["big", 12],
        ["small", 4],
      ]),
    );
    const odd = shares(
      [
        { name: "a", weight: 2 },
        { name: "b", weight: 1 },
        { name: "c", weight: 1 },
      ],
      7,
    );
    // exact 3.5, 1.75, 1.75: floors 3, 1, 1; two left go to the largest remainders (b, c)
    expect(odd).toEqual(
      new Map([
        ["a", 3],
        ["b", 2],
        ["c", 2],
      ]),
    );
    expect(shares([], 16).size).toBe(0);
  });
});

describe("balance", () => {
  it("claims free slices (most preferred first) up to the share, never ones a live node holds", () => {
    const step = balance({
      me: "b",
      count: 8,
      nodes: [
        { name: "a", weight: 1, slices: [0, 1, 2, 3, 4, 5, 6] },
        { name: "b", weight: 1, slices: [] },
      ],
    });
    expect(step.share).toBe(4);
    expect(step.want).toBe(4);
    expect(step.claim).toEqual([7]);
    expect(step.release).toEqual([]);
    const free = balance({ me: "x", count: 16, nodes: [{ name: "x", weight: 1, slices: [] }] });
    expect(free.claim).toHaveLength(16);
    const prefs = free.claim.map((k) => preference("x", k));
    expect([...prefs].sort((p, q) => q - p)).toEqual(prefs);
  });

  it("releases the least preferred extras when above the share", () => {
    const mine = [0, 1, 2, 3, 4, 5, 6, 7];
    const step = balance({
      me: "a",
      count: 8,
      nodes: [
        { name: "a", weight: 1, slices: mine },
        { name: "b", weight: 1, slices: [] },
      ],
    });
    expect(step.share).toBe(4);
    expect(step.release).toHaveLength(4);
    const kept = mine.filter((k) => !step.release.includes(k));
    for (const r of step.release)
      for (const k of kept) expect(preference("a", r)).toBeLessThanOrEqual(preference("a", k));
  });

  it("converges: nodes joining and leaving end with disjoint slices that cover the space, by share", () => {
    // a simulated cluster: each round every node takes one step; claims succeed for free slices only
    type World = Map<string, { weight: number; slices: Set<number> }>;
    const count = 16;
    const run = (world: World, rounds = 10): void => {
      for (let r = 0; r < rounds; r++)
        for (const [me, node] of world) {
          const nodes: NodeView[] = [...world].map(([name, n]) => ({
            name,
            weight: n.weight,
            slices: [...n.slices],
          }));
          const step = balance({ me, nodes, count });
          for (const k of step.release) node.slices.delete(k);
          let want = step.want;
          for (const k of step.claim) {
            if (want === 0) break;
            if ([...world.values()].some((n) => n.slices.has(k))) continue;
            node.slices.add(k);
            want--;
          }
        }
    };
    const check = (world: World): void => {
      const all = [...world.values()].flatMap((n) => [...n.slices]);
      expect(new Set(all).size).toBe(all.length);
      expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, k) => k));
      const want = shares(
        [...world].map(([name, n]) => ({ name, weight: n.weight })),
        count,
      );
      for (const [name, n] of world) expect(n.slices.size).toBe(want.get(name));
    };
    const world: World = new Map([["a", { weight: 1, slices: new Set() }]]);
    run(world);
    check(world);
    world.set("b", { weight: 1, slices: new Set() });
    run(world);
    check(world);
    const beforeC = new Map([...world].map(([n, v]) => [n, new Set(v.slices)]));
    world.set("c", { weight: 2, slices: new Set() });
    run(world);
    check(world);
    // a node joining only takes slices from the others; they keep the rest
    for (const name of ["a", "b"])
      for (const k of world.get(name)!.slices) expect(beforeC.get(name)!.has(k)).toBe(true);
    world.delete("a");
    run(world);
    check(world);
  });
});

describe("splitSlices", () => {
  it("gives each worker a contiguous run, sizes within one of each other", () => {
    expect(splitSlices([7, 1, 3, 5], 2)).toEqual([
      [1, 3],
      [5, 7],
    ]);
    expect(splitSlices([0, 1, 2, 3, 4], 2)).toEqual([
      [0, 1],
      [2, 3, 4],
    ]);
    expect(splitSlices([4, 9], 3)).toEqual([[4], [9]]);
    expect(splitSlices([2], 1)).toEqual([[2]]);
    expect(splitSlices([], 4)).toEqual([]);
    for (let n = 1; n <= 6; n++) {
      const groups = splitSlices([...Array(16).keys()], n);
      expect(groups.flat()).toEqual([...Array(16).keys()]);
      const sizes = groups.map((g) => g.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });
});
