/**
 * One worker position of the plan and the process filling it: its record, the command line that
 * starts it, and the pure rules the supervisor applies to it (stall, backoff).
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { formatDuration } from "../util/units.js";
import type { WorkerMessage } from "../protocol/worker.js";
import type { Settings } from "../protocol/worker.js";
import type { WorkerSpec } from "./plan.js";
import type { WorkerState, WorkerStatus } from "./status-file.js";

export interface WorkerCommand {
  file: string;
  args: string[];
  /**
   * Node options for the worker process, before the script (e.g. a smaller young generation); only
   * when `file` is node itself.
   */
  execArgv?: readonly string[];
  /**
   * The settings in force in the master. When given, the worker is told (SETTINGS_ENV) to take its
   * settings over IPC instead of reading the config file, and a reload sends it the new settings
   * instead of SIGHUP. Null while the master has none (the worker then reads the file).
   */
  settings?: () => Settings | null;
}

/**
 * V8 options for every worker, for a smaller idle process (about 7 MB of RSS each, measured with
 * benchmarks/memory.js):
 * - 1 MB semi-spaces instead of up to 16 MB: an idle worker allocates little, and under load the
 *   scavenges are more frequent but cheap;
 * - a 16x interrupt budget: the start (module loading, recovery, the first listing) no longer makes
 *   any function hot enough for TurboFan, whose code pages then stay out of RSS; under load the hot
 *   functions are still optimized, a little later.
 * These are candidates: the master passes on only those the running node accepts (node-flags.ts);
 * `--interrupt-budget` is gone from the V8 of Node 22 and later, which refuses to start with it.
 */
export const WORKER_EXEC_ARGV: readonly string[] = ["--max-semi-space-size=1", "--interrupt-budget=1048576"];

/**
 * How the master starts a worker: the command for a spec, given the node options of WORKER_EXEC_ARGV
 * that the running node accepts (a command that does not run node itself may ignore them).
 */
export type WorkerCommandFactory = (spec: WorkerSpec, nodeOptions: readonly string[]) => WorkerCommand;

/**
 * The worker command line: exactly what an operator could run by hand (`qrunner start --runner=NAME
 * --slice=K/N -C FILE`), run by this node with the accepted WORKER_EXEC_ARGV. With `settings`, the
 * workers take the master's validated settings over IPC (see WorkerCommand.settings).
 */
export function workerCommand(
  configFile: string,
  extraArgs: readonly string[] = [],
  settings?: () => Settings | null,
): WorkerCommandFactory {
  const bin = fileURLToPath(new URL("../../bin/qrunner", import.meta.url));
  return (spec, nodeOptions) => ({
    file: process.execPath,
    args: [bin, "start", `--runner=${spec.runner}`, `--slice=${spec.slice}`, "-C", configFile, ...extraArgs],
    execArgv: nodeOptions,
    ...(settings ? { settings } : {}),
  });
}

type Heartbeat = Extract<WorkerMessage, { type: "heartbeat" }>;

export interface Slot {
  spec: WorkerSpec;
  child: ChildProcess | null;
  state: WorkerState;
  /** why the current process is expected to end: "run" means any exit is a failure */
  intent: "run" | "stop" | "stall";
  startedAt: number;
  lastMessageAt: number;
  hb: Heartbeat | null;
  /** since when entries have been due without the worker saying it waits; null when none are due */
  dueSince: number | null;
  lastError: string | null;
  /** the node options the current (or last) process was started with, for the exit 9 message */
  nodeOptions: readonly string[];
  restarts: number;
  /** restart times within the window, for max_restarts */
  restartTimes: number[];
  /** consecutive failures: the backoff exponent */
  failStreak: number;
  timer: NodeJS.Timeout | null;
  /** a config change arrived before the worker was ready (and had its SIGHUP handler): send it then */
  hupPending: boolean;
  /** the running worker takes its settings over IPC from this (WorkerCommand.settings); null: SIGHUP */
  settings: (() => Settings | null) | null;
  nextStartAt: number | null;
  onExit: Array<() => void>;
  onReady: Array<(ok: boolean) => void>;
}

export function isMessage(m: unknown): m is WorkerMessage {
  return typeof m === "object" && m !== null && typeof (m as { type?: unknown }).type === "string";
}

export function newSlot(spec: WorkerSpec): Slot {
  return {
    spec,
    child: null,
    state: "starting",
    intent: "run",
    startedAt: 0,
    lastMessageAt: 0,
    hb: null,
    dueSince: null,
    lastError: null,
    nodeOptions: [],
    restarts: 0,
    restartTimes: [],
    failStreak: 0,
    timer: null,
    hupPending: false,
    settings: null,
    nextStartAt: null,
    onExit: [],
    onReady: [],
  };
}

export function snapshotOf(s: Slot, now: number): WorkerStatus {
  return {
    key: s.spec.key,
    runner: s.spec.runner,
    slice: s.spec.slice,
    ...(s.spec.host !== undefined ? { host: s.spec.host } : {}),
    pid: s.child?.pid ?? null,
    state: s.state,
    restarts: s.restarts,
    handled: s.hb?.handled ?? 0,
    failed: s.hb?.failed ?? 0,
    due: s.hb?.due ?? 0,
    inHand: s.hb?.inHand ?? 0,
    lastError: s.lastError,
    sinceProgress: s.hb ? Math.max(0, Math.round((now - s.hb.lastProgress) / 1000)) : null,
    waiting: s.hb?.waiting ?? null,
    startedAt: s.child ? s.startedAt : null,
    nextStartAt: s.nextStartAt,
  };
}

export function waitExit(slot: Slot, ms: number): Promise<boolean> {
  if (!slot.child) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    slot.onExit.push(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export function waitReady(slot: Slot, ms: number): Promise<boolean> {
  if (slot.state === "ready") return Promise.resolve(true);
  if (!slot.child) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    slot.onReady.push((ok) => {
      clearTimeout(timer);
      resolve(ok);
    });
  });
}

/**
 * Why this worker counts as stalled now, or null: not ready in time, heartbeats stopped, or entries
 * due without progress (and without the worker saying why it waits) for longer than the limit.
 */
export function stallReason(slot: Slot, now: number, limit: number): string | null {
  if (slot.state === "starting" && now - slot.startedAt > limit)
    return `not ready ${formatDuration(limit)} after start`;
  if (slot.state !== "ready") return null;
  if (now - slot.lastMessageAt > limit) return `no heartbeat for ${formatDuration(now - slot.lastMessageAt)}`;
  if (slot.hb && slot.dueSince !== null) {
    const idle = now - Math.max(slot.dueSince, slot.hb.lastProgress);
    if (idle > limit) return `${slot.hb.due} entries due and no progress for ${formatDuration(idle)}`;
  }
  return null;
}

/** The wait before restart number `streak + 1` of a run of failures: base, doubling, capped. */
export function backoffDelay(streak: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** streak, maxMs);
}
