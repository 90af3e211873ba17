/**
 * The restart policy: when a running worker counts as stalled (it is then killed and restarted), what
 * a worker's exit means (stopped on purpose, done, refused its command line or the config, failed),
 * and when a failed worker runs again (exponential backoff, at most max_restarts within the restart
 * window, the backoff starting over after a healthy run). Kept apart from the supervisor, which owns
 * the timers and the processes, so that these rules read in one place.
 */
import type { ChildProcess } from "node:child_process";
import type { Logger } from "../util/log.js";
import { formatDuration } from "../util/units.js";
import { WorkerExit } from "../protocol/worker.js";
import { backoffDelay, stallReason, type Slot } from "./slot.js";

/**
 * The exit code of a node that refuses its own command line (`node: bad option: ...`, an invalid
 * value): the same command fails the same way every time, so the worker is not restarted.
 */
export const NODE_REFUSED_EXIT = 9;

/** The backoff and health settings of the restart policy (SupervisorOptions carries them). */
export interface RestartTuning {
  /** first restart delay, doubling up to backoffMaxMs (default 1 s and 60 s) */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** a worker that ran this long before dying starts its backoff over (default 5 min) */
  healthyRunMs?: number;
}

/**
 * Mark the slot's running process stalled when stallReason says it is, and log it: true when it is to
 * be killed (its exit then restarts it, see judgeExit).
 */
export function markStalled(
  slot: Slot,
  child: ChildProcess,
  now: number,
  limit: number,
  log: Logger,
): boolean {
  const why = stallReason(slot, now, limit);
  if (why === null) return false;
  slot.intent = "stall";
  slot.state = "stalled";
  slot.lastError = `stalled: ${why}`;
  log.error(
    { runner: slot.spec.runner, slice: slot.spec.slice, workerPid: child.pid },
    `worker stalled (${why}); killing it`,
  );
  return true;
}

/**
 * Record on the slot what the exit of its process means, and log it; true when the worker is to be
 * restarted after a backoff (see restartDelay). `stopping`: the whole supervisor is stopping.
 */
export function judgeExit(
  slot: Slot,
  child: ChildProcess,
  code: number | null,
  signal: NodeJS.Signals | null,
  ranMs: number,
  stopping: boolean,
  log: Logger,
): boolean {
  const where = { runner: slot.spec.runner, slice: slot.spec.slice, workerPid: child.pid, code, signal };
  if (stopping || slot.intent === "stop") {
    slot.state = "stopped";
    log.debug(where, "worker stopped");
  } else if (slot.intent === "stall") {
    return true;
  } else if (code === WorkerExit.OK) {
    slot.state = "stopped";
    log.warn(where, "worker exited by itself (exit 0); not restarted until the config changes");
  } else if (code === WorkerExit.USAGE) {
    slot.state = "gave-up";
    slot.lastError = "bad command line (exit 64)";
    log.error(where, "worker refused its command line (exit 64); not restarted");
  } else if (code === NODE_REFUSED_EXIT) {
    const options = slot.nodeOptions.join(" ");
    slot.state = "gave-up";
    slot.lastError = `node refused the worker's command line (exit 9: a bad or unsupported node option${options ? ` among: ${options}` : ""}); not restarted`;
    log.error(
      { ...where, nodeOptions: slot.nodeOptions, node: process.version },
      "node refused to start the worker with its command line (exit 9, see the `node:` line above); not restarted until the config changes or `qrunner reload`",
    );
  } else if (code === WorkerExit.CONFIG) {
    slot.state = "config-error";
    slot.lastError = "invalid config (exit 78); waiting for a config change";
    log.error(where, "worker found the config invalid (exit 78); not restarted until the config changes");
  } else {
    slot.lastError = signal ? `killed by ${signal}` : `exited with code ${code}`;
    log.error({ ...where, ranMs }, "worker exited unexpectedly");
    return true;
  }
  return false;
}

/**
 * The wait before a failed worker (which ran `ranMs`) starts again, with the slot put in `backoff`;
 * null when it has used up max_restarts within the window: the slot has then given up.
 */
export function restartDelay(
  slot: Slot,
  ranMs: number,
  tuning: RestartTuning,
  restartWindowMs: number,
  log: Logger,
): number | null {
  const now = Date.now();
  // a worker that ran well for a while, or that got work done before it died (killed from outside,
  // not failing at start), starts its backoff over: repeated kills must not stretch restarts to 60 s
  if (ranMs >= (tuning.healthyRunMs ?? 300_000) || (slot.hb?.handled ?? 0) > 0) slot.failStreak = 0;
  slot.restartTimes = slot.restartTimes.filter((t) => now - t < restartWindowMs);
  if (slot.restartTimes.length >= slot.spec.maxRestarts) {
    slot.state = "gave-up";
    log.error(
      {
        runner: slot.spec.runner,
        slice: slot.spec.slice,
        restarts: slot.restartTimes.length,
        window: formatDuration(restartWindowMs),
        lastError: slot.lastError,
      },
      "worker gave up: too many restarts; fix the cause, then `qrunner reload`",
    );
    return null;
  }
  const delay = backoffDelay(slot.failStreak, tuning.backoffBaseMs ?? 1000, tuning.backoffMaxMs ?? 60_000);
  slot.failStreak++;
  slot.state = "backoff";
  slot.nextStartAt = now + delay;
  log.info(
    { runner: slot.spec.runner, slice: slot.spec.slice, delayMs: delay },
    "restarting worker after backoff",
  );
  return delay;
}
