import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseName, sha1OfName } from "../../src/queue/names.js";

const EXTS = ["qf", "wip", "tmp"] as const;
const hex = fc.stringMatching(/^[0-9a-f]{40}$/);
const name = fc
  .tuple(fc.integer({ min: 1_000_000_000, max: 9_999_999_999 }), fc.integer({ min: 0, max: 999_999 }), hex)
  .chain(([s, us, sha1]) =>
    fc
      .constantFrom(...EXTS, "qfx", "bad", "")
      .map((ext) => `${s}.${String(us).padStart(6, "0")}+${sha1}.${ext}`),
  );
/** a valid name with one character replaced: every position, every kind of wrong byte */
const mutated = fc
  .tuple(name, fc.nat(), fc.constantFrom("x", "A", "F", "-", "+", ".", "/", "9", "é", ""))
  .map(([n, at, c]) => {
    const i = at % n.length;
    return n.slice(0, i) + c + n.slice(i + 1);
  });

describe("entry names", () => {
  it("sha1OfName agrees with parseName on valid, foreign and damaged names", () => {
    fc.assert(
      fc.property(fc.oneof(name, mutated, fc.string()), (n) => {
        const p = parseName(n);
        for (const ext of EXTS) expect(sha1OfName(n, ext)).toBe(p && p.ext === ext ? p.sha1 : null);
      }),
      { numRuns: 5000 },
    );
  });
});
