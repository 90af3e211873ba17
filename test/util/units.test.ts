import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../src/util/units.js";

describe("formatDuration", () => {
  it("short: one decimal in the largest unit reached, as status and the logs print", () => {
    expect(formatDuration(0)).toBe("0ms");
    expect(formatDuration(999)).toBe("999ms");
    expect(formatDuration(1800)).toBe("1.8s");
    expect(formatDuration(60_000)).toBe("1m");
    expect(formatDuration(12.4 * 60_000)).toBe("12.4m");
    expect(formatDuration(2.1 * 3_600_000)).toBe("2.1h");
    expect(formatDuration(2 * 86_400_000)).toBe("2d");
  });

  it("whole: whole units, a unit once two of it have passed, as queue list's AGE prints", () => {
    expect(formatDuration(-5000, "whole")).toBe("0s");
    expect(formatDuration(400, "whole")).toBe("0s");
    expect(formatDuration(119_000, "whole")).toBe("119s");
    expect(formatDuration(120_000, "whole")).toBe("2m");
    expect(formatDuration(77 * 60_000, "whole")).toBe("77m");
    expect(formatDuration(119 * 60_000, "whole")).toBe("119m");
    expect(formatDuration(2 * 3_600_000, "whole")).toBe("2h");
    expect(formatDuration(47 * 3_600_000, "whole")).toBe("47h");
    expect(formatDuration(4 * 86_400_000, "whole")).toBe("4d");
  });

  it("seconds: always seconds with one decimal, as the demo's timeline prints", () => {
    expect(formatDuration(15_000, "seconds")).toBe("15.0s");
    expect(formatDuration(93_420, "seconds")).toBe("93.4s");
  });

  it("short reads back through parseDuration to the value it rounds", () => {
    for (const ms of [1800, 60_000, 5.2 * 60_000, 2.1 * 3_600_000, 3 * 86_400_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(Math.round(ms));
    }
  });
});
