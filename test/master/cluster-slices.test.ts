/** Slice sets: what a cluster node's worker serves (`--slice=3/16,7/16`). */
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import {
  formatSlice,
  inSlice,
  isSliceSet,
  makeSlice,
  makeSliceSet,
  parseSlice,
  sliceIndices,
  sliceOf,
} from "../../src/queue/slice.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { tempDir } from "../helpers/tmp.js";

const sha = (): string => randomBytes(20).toString("hex");

describe("slice sets", () => {
  it("hold exactly the sha1s of their slices", () => {
    for (const [count, ks] of [
      [16, [3, 7]],
      [16, [0, 1, 2, 3, 15]],
      [7, [0, 6]],
      [5, [1, 2, 3]],
      [16, [...Array(16).keys()]],
    ] as const) {
      const set = makeSliceSet(ks, count);
      const parts = ks.map((k) => makeSlice(k, count));
      for (let i = 0; i < 3000; i++) {
        const h = sha();
        expect(inSlice(set, h)).toBe(parts.some((p) => inSlice(p, h)));
        expect(inSlice(set, h)).toBe((ks as readonly number[]).includes(sliceOf(h, count)));
      }
      // the edges: the first and last sha1 of every slice of the count
      for (let k = 0; k < count; k++) {
        const s = makeSlice(k, count);
        const last =
          s.hi === null ? "f".repeat(40) : (BigInt("0x" + s.hi) - 1n).toString(16).padStart(40, "0");
        for (const h of [s.lo, last]) expect(inSlice(set, h)).toBe((ks as readonly number[]).includes(k));
      }
    }
  });

  it("leave one slice exactly as it was", () => {
    const one = makeSliceSet([5], 16);
    expect(one).toEqual(makeSlice(5, 16));
    expect(isSliceSet(one)).toBe(false);
    expect(sliceIndices(one)).toEqual([5]);
    expect(formatSlice(one)).toBe("5/16");
  });

  it("parse from 3/16,7/16, 3,7/16 and 0-3,7/16, and print compactly", () => {
    const a = parseSlice("3/16,7/16");
    expect(isSliceSet(a)).toBe(true);
    expect(sliceIndices(a)).toEqual([3, 7]);
    expect(formatSlice(a)).toBe("3,7/16");
    expect(sliceIndices(parseSlice("3,7/16"))).toEqual([3, 7]);
    expect(sliceIndices(parseSlice("7/16,3/16"))).toEqual([3, 7]);
    const r = parseSlice("0-3,7,9-10/16");
    expect(sliceIndices(r)).toEqual([0, 1, 2, 3, 7, 9, 10]);
    expect(formatSlice(r)).toBe("0-3,7,9-10/16");
    expect(parseSlice(formatSlice(r))).toEqual(r);
    expect(r.index).toBe(0);
    expect(r.count).toBe(16);
    // the existing forms are untouched
    expect(formatSlice(parseSlice("2/5"))).toBe("2/5");
    expect(formatSlice(parseSlice("1/2:3,1"))).toBe("1/2:3,1");
    for (const bad of [
      "3/16,7/8",
      "3,3/16",
      "3-1/16",
      "0-16/16",
      "16/16,1/16",
      "1/2:1,1,0/2",
      "1,/16",
      "/16",
      "3/16,",
    ])
      expect(() => parseSlice(bad), bad).toThrow();
  });
});

describe("a Switchboard over a slice set", () => {
  let cleanup: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await cleanup?.();
    cleanup = null;
  });

  it("dequeues exactly the entries of its slices, and recovers only theirs", async () => {
    const t = await tempDir("qrunner-cluster-slices-");
    cleanup = t.cleanup;
    const all = await Switchboard.open({ root: t.dir, queue: "incoming" });
    const ids = await all.enqueueMany(
      Array.from({ length: 400 }, (_, i) => ({
        message: Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`),
        meta: { sender: "a@example.org", recipients: ["b@example.org"] },
      })),
    );
    const set = parseSlice("1,4-5/8");
    const mine = ids.filter((id) => [1, 4, 5].includes(sliceOf(id, 8)));
    const sb = await Switchboard.open({ root: t.dir, queue: "incoming", slice: set });
    const got: string[] = [];
    for (let e = await sb.dequeue(); e; e = await sb.dequeue()) got.push(e.id);
    expect(got.sort()).toEqual([...mine].sort());
    // all left in progress: a new worker of the same set takes them back, and no others
    const again = await Switchboard.open({ root: t.dir, queue: "incoming", slice: set });
    expect((await again.recover()).recovered).toBe(mine.length);
    const other = await Switchboard.open({
      root: t.dir,
      queue: "incoming",
      slice: parseSlice("0,2-3,6-7/8"),
    });
    expect((await other.recover()).recovered).toBe(0);
    let rest = 0;
    while (await other.dequeue()) rest++;
    expect(rest).toBe(ids.length - mine.length);
  });
});
