import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { inSlice, makeSlice, parseSlice, sliceOf, formatSlice } from "../../src/queue/slice.js";

const SPACE = 1n << 160n;

function randomSha1(): string {
  return randomBytes(20).toString("hex");
}

describe("slices", () => {
  it("matches floor(h * N / 2^160) for any N, not only powers of two", () => {
    for (const n of [1, 2, 3, 4, 5, 7, 10, 16]) {
      const slices = Array.from({ length: n }, (_, k) => makeSlice(k, n));
      for (let i = 0; i < 500; i++) {
        const h = randomSha1();
        const k = Number((BigInt("0x" + h) * BigInt(n)) / SPACE);
        expect(sliceOf(h, n)).toBe(k);
        expect(slices.filter((s) => inSlice(s, h)).map((s) => s.index)).toEqual([k]);
      }
    }
  });

  it("puts the edges of the space where the formula says", () => {
    const n = 3;
    const boundary = (k: bigint): bigint => (k * SPACE + BigInt(n) - 1n) / BigInt(n);
    for (const k of [1n, 2n]) {
      const b = boundary(k);
      const at = b.toString(16).padStart(40, "0");
      const before = (b - 1n).toString(16).padStart(40, "0");
      expect(sliceOf(at, n)).toBe(Number(k));
      expect(sliceOf(before, n)).toBe(Number(k) - 1);
      expect(inSlice(makeSlice(Number(k), n), at)).toBe(true);
      expect(inSlice(makeSlice(Number(k) - 1, n), before)).toBe(true);
    }
    expect(sliceOf("0".repeat(40), 7)).toBe(0);
    expect(sliceOf("f".repeat(40), 7)).toBe(6);
    expect(inSlice(makeSlice(6, 7), "f".repeat(40))).toBe(true);
  });

  it("splits weighted slices in proportion to the weights, within statistical bounds", () => {
    const weights = [3, 1, 2];
    const total = 6;
    const slices = weights.map((_, k) => makeSlice(k, weights.length, weights));
    const counts = [0, 0, 0];
    const samples = 60_000;
    for (let i = 0; i < samples; i++) {
      const h = randomSha1();
      const owners = slices.filter((s) => inSlice(s, h));
      expect(owners).toHaveLength(1);
      counts[owners[0]!.index]!++;
    }
    weights.forEach((w, k) => {
      const p = w / total;
      const sd = Math.sqrt(samples * p * (1 - p));
      // 5 standard deviations: a false failure is about one in 3.5 million runs
      expect(Math.abs(counts[k]! - samples * p)).toBeLessThan(5 * sd);
    });
  });

  it("parses K/N and the weighted form, and refuses nonsense", () => {
    expect(formatSlice(parseSlice("2/5"))).toBe("2/5");
    expect(formatSlice(parseSlice("1/2:3,1"))).toBe("1/2:3,1");
    expect(parseSlice("0/2:3,1").hi).toBe(makeSlice(0, 2, [3, 1]).hi);
    for (const bad of ["4/4", "x/2", "1/0", "-1/2", "0/2:1", "0/2:1,0", ""])
      expect(() => parseSlice(bad)).toThrow();
  });
});
