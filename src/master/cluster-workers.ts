/**
 * What cluster mode does to the master's workers, through the supervisor: which workers serve which
 * cluster slices, killing them at once, and telling each until when (on the machine's monotonic
 * clock) its slices stay trustworthy.
 */
import { parseSlice, sliceIndices } from "../queue/slice.js";
import type { LeaseMessage } from "../protocol/worker.js";
import { monotonicMs } from "../util/clock.js";
import type { Supervisor } from "./supervisor.js";

/** What the cluster node does to the master's workers. */
export interface ClusterHooks {
  /** re-plan the workers for `active()` now; resolves once workers of dropped slices have exited */
  replan(): Promise<void>;
  /** SIGKILL at once every worker serving one of these slices */
  kill(slices: readonly number[]): void;
  /** is a worker process serving one of these slices still running? */
  busy(slices: readonly number[]): boolean;
  /** is a worker of the plan stopped because its slices were not trusted when it was due to start? */
  heldBack(): boolean;
  /** send every worker the monotonic ms until which its slices stay trustworthy (null: no cluster slice) */
  notify(until: (sliceSpec: string) => number | null): void;
}

/** Why a worker of this node's plan is not started: its slices are not (or no longer) trusted. */
export const HELD_BACK = "this node holds no lease on its slices";

const specCache = new Map<string, readonly number[]>();

/** The slice indices of a worker's slice spec (cached: the same few specs are asked about all the time). */
export function specSlices(spec: string): readonly number[] {
  let ks = specCache.get(spec);
  if (!ks) {
    try {
      ks = sliceIndices(parseSlice(spec));
    } catch {
      ks = [];
    }
    if (specCache.size > 1000) specCache.clear();
    specCache.set(spec, ks);
  }
  return ks;
}

/** Does a worker's slice spec share a slice with these? */
export function overlaps(spec: string, slices: readonly number[]): boolean {
  return specSlices(spec).some((k) => slices.includes(k));
}

/** The cluster's hooks on a supervisor's workers; `replan` re-plans them for the node's active slices. */
export function supervisorHooks(supervisor: Supervisor, replan: () => Promise<void>): ClusterHooks {
  return {
    replan,
    kill: (slices) => void supervisor.kill((spec) => overlaps(spec.slice, slices)),
    busy: (slices) => supervisor.snapshot().some((w) => w.pid !== null && overlaps(w.slice, slices)),
    heldBack: () =>
      supervisor.snapshot().some((w) => w.pid === null && w.state === "stopped" && w.lastError === HELD_BACK),
    notify: (until) =>
      supervisor.notify((spec) => {
        const at = until(spec.slice);
        if (at === null) return null;
        // `ms` for a worker of an older release, which knows only the relative form
        const ms = Math.max(0, Math.round(at - monotonicMs()));
        return { type: "lease", ms, until: at } satisfies LeaseMessage;
      }),
  };
}
