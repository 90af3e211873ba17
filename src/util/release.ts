/**
 * Shutting down: run every release step in order, each whatever the ones before it did (BullMQ's
 * close() is the model). One step that throws is logged with what it was doing and the rest still
 * run, so a failure early on never keeps a lock from being released.
 */
import { describeError } from "./errors.js";
import type { Logger } from "./log.js";

/** A step's name, in words the log line completes ("cannot <name>"), and the step itself. */
export type ReleaseStep = readonly [name: string, step: () => unknown];

/** Runs the steps in order and returns how many of them failed. */
export async function releaseInOrder(log: Logger, steps: readonly ReleaseStep[]): Promise<number> {
  let failed = 0;
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (err) {
      failed++;
      log.error({ err: describeError(err), step: name }, `shutdown: cannot ${name}; going on with the rest`);
    }
  }
  return failed;
}
