import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { diffPlan, planWorkers } from "../../src/master/plan.js";
import { parseSlice } from "../../src/queue/slice.js";

const cfg = (input: unknown) => configSchema.parse(input);

describe("planWorkers", () => {
  it("gives each runner instances N slices 0/N..N-1/N and outgoing auto one weighted slice per host", () => {
    const plan = planWorkers(
      cfg({
        runners: { incoming: { instances: 3 }, archive: { nice: 5 } },
        smtp: {
          hosts: [
            { host: "a", weight: 1 },
            { host: "b", port: 587, weight: 2.5 },
            { host: "c", name: "mx-c" },
          ],
        },
      }),
    );
    expect(plan.map((s) => s.key)).toEqual([
      "incoming 0/3",
      "incoming 1/3",
      "incoming 2/3",
      "outgoing 0/3:1,2.5,1 a:25",
      "outgoing 1/3:1,2.5,1 b:587",
      "outgoing 2/3:1,2.5,1 mx-c",
      "bounce 0/1",
      "command 0/1",
      "archive 0/1",
      "backoff 0/1",
    ]);
    expect(plan.find((s) => s.runner === "archive")?.nice).toBe(5);
    // every slice spec is one the worker's --slice accepts
    for (const s of plan) expect(() => parseSlice(s.slice)).not.toThrow();
  });

  it("splits outgoing into N equal slices when instances is a number", () => {
    const plan = planWorkers(
      cfg({ runners: { outgoing: { instances: 2 } }, smtp: { hosts: [{ host: "a" }, { host: "b" }] } }),
    );
    expect(plan.filter((s) => s.runner === "outgoing").map((s) => [s.slice, s.host])).toEqual([
      ["0/2", undefined],
      ["1/2", undefined],
    ]);
  });
});

describe("diffPlan", () => {
  const base = {
    smtp: {
      hosts: [
        { host: "a", weight: 1 },
        { host: "b", weight: 3 },
      ],
    },
  };
  const before = planWorkers(cfg(base));

  it("replaces exactly the outgoing workers when a weight changes", () => {
    const after = planWorkers(
      cfg({
        smtp: {
          hosts: [
            { host: "a", weight: 1 },
            { host: "b", weight: 2 },
          ],
        },
      }),
    );
    const d = diffPlan(before, after);
    expect(d.removed.map((s) => s.key)).toEqual(["outgoing 0/2:1,3 a:25", "outgoing 1/2:1,3 b:25"]);
    expect(d.added.map((s) => s.key)).toEqual(["outgoing 0/2:1,2 a:25", "outgoing 1/2:1,2 b:25"]);
    expect(d.kept.map((s) => s.runner)).toEqual(["incoming", "bounce", "command", "archive", "backoff"]);
  });

  it("adds and removes instances by slice, and keeps workers whose key and priority did not change", () => {
    const after = planWorkers(cfg({ ...base, runners: { incoming: { instances: 2, max_restarts: 3 } } }));
    const d = diffPlan(before, after);
    expect(d.removed.map((s) => s.key)).toEqual(["incoming 0/1"]);
    expect(d.added.map((s) => s.key)).toEqual(["incoming 0/2", "incoming 1/2"]);
    expect(d.kept).toHaveLength(6);
  });

  it("replaces a worker whose nice changed (priority is set at spawn)", () => {
    const after = planWorkers(cfg({ ...base, runners: { bounce: { nice: 7 } } }));
    const d = diffPlan(before, after);
    expect(d.removed.map((s) => s.key)).toEqual(["bounce 0/1"]);
    expect(d.added.map((s) => s.key)).toEqual(["bounce 0/1"]);
  });

  it("changes nothing for an identical plan", () => {
    const d = diffPlan(before, planWorkers(cfg(base)));
    expect(d.removed).toEqual([]);
    expect(d.added).toEqual([]);
    expect(d.kept).toHaveLength(before.length);
  });
});
