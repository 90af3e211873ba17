import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { trimEndOf, trimOf, trimStartOf } from "../../src/util/trim.js";

const blanky = fc.string({ unit: fc.constantFrom(" ", "\t", "\r", "\n", "a", "#"), maxLength: 40 });

describe("trimOf / trimStartOf / trimEndOf", () => {
  it("agree with the regexes they replace", () => {
    fc.assert(
      fc.property(blanky, (s) => {
        // the exact expressions these replaced (fine on short input, quadratic on long blank runs)
        expect(trimOf(s, " \t", " \t\r")).toBe(s.replace(/^[ \t]+|[ \t\r]+$/g, ""));
        expect(trimOf(s, " \t")).toBe(s.replace(/^[ \t]+|[ \t]+$/g, ""));
        expect(trimEndOf(s, "\r\n")).toBe(s.replace(/[\r\n]+$/, ""));
        expect(trimStartOf(s, "a")).toBe(s.replace(/^a+/, ""));
      }),
    );
  });

  it("trims a blank run of a megabyte followed by text (where /[ \\t]+$/ is quadratic)", () => {
    const run = " \t".repeat(512 * 1024);
    expect(trimOf(run + "x" + run + "y" + run, " \t")).toBe("x" + run + "y");
    expect(trimOf(run, " \t")).toBe("");
  });

  it("returns the same string when there is nothing to trim", () => {
    expect(trimOf("abc", " ")).toBe("abc");
    expect(trimEndOf("", " ")).toBe("");
  });
});
