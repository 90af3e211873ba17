import { describe, expect, it } from "vitest";
import { autoSlices, hostForSha1, hostId, pickWeighted, routeHost } from "../../src/delivery/hosts.js";
import { inSlice } from "../../src/queue/slice.js";

const a = { host: "mx-a.example.org", port: 25, weight: 1 };
const b = { host: "mx-b.example.org", port: 587, weight: 3, name: "relay-b" };
const f = { host: "fallback.example.org", port: 25 };

describe("hosts", () => {
  it("hostId is the name, else host:port", () => {
    expect(hostId(a)).toBe("mx-a.example.org:25");
    expect(hostId(b)).toBe("relay-b");
  });

  it("autoSlices gives each host a slice sized by its weight, in order", () => {
    const slices = autoSlices([a, b]);
    expect(slices.map((s) => [s.id, s.slice.index, s.slice.count])).toEqual([
      ["mx-a.example.org:25", 0, 2],
      ["relay-b", 1, 2],
    ]);
    // a quarter of the space for weight 1 of 4
    expect(slices[0]!.slice.hi).toBe("4000000000000000000000000000000000000000");
    expect(inSlice(slices[1]!.slice, "4000000000000000000000000000000000000000")).toBe(true);
    expect(() => autoSlices([])).toThrow(RangeError);
  });

  it("hostForSha1 follows the weighted split", () => {
    expect(hostForSha1([a, b], "3fffffffffffffffffffffffffffffffffffffff")).toBe(a);
    expect(hostForSha1([a, b], "4000000000000000000000000000000000000000")).toBe(b);
  });

  it("pickWeighted picks in proportion to the weights", () => {
    expect(pickWeighted([], () => 0.5)).toBeUndefined();
    expect(pickWeighted([a, b], () => 0)).toBe(a);
    expect(pickWeighted([a, b], () => 0.249)).toBe(a);
    expect(pickWeighted([a, b], () => 0.25)).toBe(b);
    expect(pickWeighted([a, b], () => 0.999999)).toBe(b);
    expect(pickWeighted([a, b], () => 1)).toBe(b);
    let seed = 1;
    const rnd = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647;
    let countB = 0;
    for (let i = 0; i < 4000; i++) if (pickWeighted([a, b], rnd) === b) countB++;
    expect(countB / 4000).toBeGreaterThan(0.7);
    expect(countB / 4000).toBeLessThan(0.8);
  });

  it("routeHost prefers the slice's host, then other hosts, then fallbacks only when all are down", () => {
    const up = new Set(["mx-a.example.org:25", "relay-b", "fallback.example.org:25"]);
    const available = (id: string): boolean => up.has(id);
    expect(routeHost({ hosts: [a, b], fallback: [f], available, preferred: a })).toBe(a);
    up.delete("mx-a.example.org:25");
    expect(routeHost({ hosts: [a, b], fallback: [f], available, preferred: a })).toBe(b);
    up.delete("relay-b");
    expect(routeHost({ hosts: [a, b], fallback: [f], available, preferred: a })).toBe(f);
    up.delete("fallback.example.org:25");
    expect(routeHost({ hosts: [a, b], fallback: [f], available })).toBeUndefined();
  });
});
