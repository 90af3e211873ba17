/** `runners:` of `qrunner.yaml`: each runner's worker count, poll interval, priority and concurrency. */
import { z } from "zod";
import { duration } from "./schema-units.js";

const runnerBase = {
  instances: z.number().int().min(1).max(64).default(1).describe("worker processes; each takes slice K of N"),
  sleep: duration
    .default("1s")
    .describe("safety-net poll interval; a file landing in the queue wakes the runner at once"),
  nice: z.number().int().min(-20).max(19).default(0).describe("process priority of the runner's workers"),
  max_restarts: z
    .number()
    .int()
    .min(0)
    .default(10)
    .describe("restarts within restart_window before the worker stays down"),
  concurrency: z.number().int().min(1).max(256).default(1).describe("entries handled at once by one worker"),
};

const runner = z.object(runnerBase).strict();

export const runnersSchema = z
  .object({
    // several posts at once: each waits on its successors' fsyncs, and concurrent ones share them
    incoming: z
      .object({ ...runnerBase, concurrency: runnerBase.concurrency.default(8) })
      .strict()
      .default({}),
    outgoing: z
      .object({
        ...runnerBase,
        instances: z
          .union([z.literal("auto"), z.number().int().min(1).max(64)])
          .default("auto")
          .describe(
            "auto: one worker per SMTP host, slice sized by weight; N: N equal slices over all hosts",
          ),
        concurrency: z
          .number()
          .int()
          .min(1)
          .max(256)
          .default(8)
          .describe("SMTP transactions in flight per worker"),
      })
      .strict()
      .default({}),
    bounce: z
      .object({
        ...runnerBase,
        idle_only: z.boolean().default(false).describe("work only while the machine is idle"),
        max_loadavg: z
          .number()
          .min(0)
          .default(1.0)
          .describe("with idle_only: the 1-minute load average must be below this"),
      })
      .strict()
      .default({}),
    command: runner.default({}),
    archive: z
      .object({ ...runnerBase, nice: runnerBase.nice.default(10), sleep: duration.default("10s") })
      .strict()
      .default({}),
    // deliveries wait on SMTP hosts: several at once, as outgoing does
    backoff: z
      .object({ ...runnerBase, concurrency: runnerBase.concurrency.default(8) })
      .strict()
      .default({}),
  })
  .strict()
  .default({});
