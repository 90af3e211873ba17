/**
 * The worker plan: which worker processes a config asks for. Each spec has a stable key so that a
 * config edit can tell which workers changed (and must be replaced) from those that only need to
 * reread the config (SIGHUP).
 */
import type { Config, RunnerName } from "../config/schema.js";
import { RUNNER_NAMES } from "../config/schema.js";
import { hostId } from "../delivery/hosts.js";
import { formatSlice, makeSliceSet } from "../queue/slice.js";
import { trimEndOf } from "../util/trim.js";
import { splitSlices } from "./cluster-balance.js";

export interface WorkerSpec {
  /** stable identity: runner, slice spec and, for outgoing `auto`, the host it serves */
  readonly key: string;
  readonly runner: RunnerName;
  /** `K/N`, the weighted form `K/N:w0,w1,...` or a cluster node's set `0-3,7/16`, exactly as passed to `--slice` */
  readonly slice: string;
  /** outgoing `auto`: the SMTP host this slice maps to (its name, else host:port) */
  readonly host?: string;
  /** process priority applied when the worker is spawned */
  readonly nice: number;
  /** restarts within master.restart_window before the worker stays down */
  readonly maxRestarts: number;
}

/** A weight as it appears in a slice spec: plain decimal, at most 6 places (the precision makeSlice uses). */
function formatWeight(w: number): string {
  const fixed = w.toFixed(6);
  const s = fixed.includes(".") ? trimEndOf(trimEndOf(fixed, "0"), ".") : fixed;
  return s === "" || s === "0" ? "0.000001" : s;
}

function specKey(runner: string, slice: string, host?: string): string {
  return host === undefined ? `${runner} ${slice}` : `${runner} ${slice} ${host}`;
}

/** Cluster mode: the slices this node holds leases on, of the cluster's `count`. */
export interface ClusterSlices {
  readonly count: number;
  readonly slices: readonly number[];
}

/**
 * Every worker the config asks for, in runner order then slice order. In cluster mode (`cluster`
 * given) each runner's workers share this node's slices instead of the whole space.
 */
export function planWorkers(config: Pick<Config, "runners" | "smtp">, cluster?: ClusterSlices): WorkerSpec[] {
  if (cluster) return planClusterWorkers(config, cluster);
  const specs: WorkerSpec[] = [];
  for (const runner of RUNNER_NAMES) {
    const rc = config.runners[runner];
    const base = { runner, nice: rc.nice, maxRestarts: rc.max_restarts };
    if (runner === "outgoing" && rc.instances === "auto") {
      // one worker per SMTP host; slice K covers a share of the space proportional to host K's weight
      const hosts = config.smtp.hosts;
      const weights = hosts.map((h) => formatWeight(h.weight)).join(",");
      hosts.forEach((h, k) => {
        const slice = `${k}/${hosts.length}:${weights}`;
        const host = hostId(h);
        specs.push({ ...base, key: specKey(runner, slice, host), slice, host });
      });
      continue;
    }
    const n = rc.instances === "auto" ? 1 : rc.instances;
    for (let k = 0; k < n; k++) {
      const slice = `${k}/${n}`;
      specs.push({ ...base, key: specKey(runner, slice), slice });
    }
  }
  return specs;
}

/**
 * A cluster node's workers: each runner's `instances` workers (for outgoing `auto`, one per SMTP host)
 * get contiguous runs of the node's slices as slice sets; each outgoing worker sends every entry to
 * the host its sha1 falls on by weight, so the hosts keep their weighted shares across the cluster.
 * No slices: no workers.
 */
function planClusterWorkers(config: Pick<Config, "runners" | "smtp">, cluster: ClusterSlices): WorkerSpec[] {
  const specs: WorkerSpec[] = [];
  if (cluster.slices.length === 0) return specs;
  for (const runner of RUNNER_NAMES) {
    const rc = config.runners[runner];
    const n = rc.instances !== "auto" ? rc.instances : runner === "outgoing" ? config.smtp.hosts.length : 1;
    for (const group of splitSlices(cluster.slices, n)) {
      const slice = formatSlice(makeSliceSet(group, cluster.count));
      specs.push({ runner, nice: rc.nice, maxRestarts: rc.max_restarts, key: specKey(runner, slice), slice });
    }
  }
  return specs;
}

export interface PlanDiff {
  /** in the old plan only: stop these */
  readonly removed: WorkerSpec[];
  /** in the new plan only: start these */
  readonly added: WorkerSpec[];
  /** in both (by key): keep running, send SIGHUP; the new spec's settings apply */
  readonly kept: WorkerSpec[];
}

/**
 * Compare two plans by key. A spec whose key is unchanged but whose priority changed is replaced
 * (nice is applied at spawn), so it shows up as removed and added.
 */
export function diffPlan(before: readonly WorkerSpec[], after: readonly WorkerSpec[]): PlanDiff {
  const old = new Map(before.map((s) => [s.key, s]));
  const removed: WorkerSpec[] = [];
  const added: WorkerSpec[] = [];
  const kept: WorkerSpec[] = [];
  const next = new Set(after.map((s) => s.key));
  for (const s of before) if (!next.has(s.key)) removed.push(s);
  for (const s of after) {
    const o = old.get(s.key);
    if (!o) added.push(s);
    else if (o.nice !== s.nice) {
      removed.push(o);
      added.push(s);
    } else kept.push(s);
  }
  return { removed, added, kept };
}
