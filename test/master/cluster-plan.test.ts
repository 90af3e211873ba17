/** The worker plan of a cluster node: each runner's workers share the node's slices as slice sets. */
import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { planWorkers } from "../../src/master/plan.js";
import { parseSlice, sliceIndices } from "../../src/queue/slice.js";

const cfg = (input: unknown) => configSchema.parse(input);
const etcd = { endpoints: ["http://127.0.0.1:2379"] };

describe("planWorkers in cluster mode", () => {
  it("splits the node's slices among each runner's instances; outgoing auto has one worker per host", () => {
    const config = cfg({
      runners: { incoming: { instances: 2 }, archive: { nice: 5 } },
      smtp: { hosts: [{ host: "a", weight: 3 }, { host: "b" }] },
      cluster: { node: "n1", etcd },
    });
    const plan = planWorkers(config, { count: 16, slices: [9, 1, 2, 3, 12] });
    expect(plan.map((s) => s.key)).toEqual([
      "incoming 1-2/16",
      "incoming 3,9,12/16",
      "outgoing 1-2/16",
      "outgoing 3,9,12/16",
      "bounce 1-3,9,12/16",
      "command 1-3,9,12/16",
      "archive 1-3,9,12/16",
      "backoff 1-3,9,12/16",
    ]);
    expect(plan.find((s) => s.runner === "archive")?.nice).toBe(5);
    // outgoing workers route by sha1 weight, not by a host of their own
    expect(plan.filter((s) => s.host !== undefined)).toEqual([]);
    for (const runner of ["incoming", "outgoing", "bounce"])
      expect(
        plan
          .filter((s) => s.runner === runner)
          .flatMap((s) => sliceIndices(parseSlice(s.slice)))
          .sort((x, y) => x - y),
      ).toEqual([1, 2, 3, 9, 12]);
  });

  it("plans no workers without slices, one-slice workers when slices are fewer than instances", () => {
    const config = cfg({ runners: { incoming: { instances: 4 } } });
    expect(planWorkers(config, { count: 16, slices: [] })).toEqual([]);
    const plan = planWorkers(config, { count: 16, slices: [4, 5] });
    expect(plan.filter((s) => s.runner === "incoming").map((s) => s.slice)).toEqual(["4/16", "5/16"]);
  });

  it("leaves the plan without a cluster exactly as it was, cluster section or not", () => {
    const base = { smtp: { hosts: [{ host: "a" }, { host: "b", weight: 2 }] } };
    expect(planWorkers(cfg({ ...base, cluster: { node: "n1", etcd } }))).toEqual(planWorkers(cfg(base)));
    expect(cfg(base).cluster).toBeUndefined();
    expect(cfg({ cluster: { etcd } }).cluster).toEqual({
      slices: 16,
      weight: 1,
      lease: 15_000,
      etcd: { ...etcd, prefix: "/qrunner/" },
    });
  });
});
