/**
 * Runs the worker processes of a plan: spawns each one with an IPC channel, restarts those that die
 * (exponential backoff, up to max_restarts within the restart window), kills and restarts stalled
 * ones, replaces the ones a config edit changed, and stops them all gracefully.
 */
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";
import { formatDuration } from "../util/units.js";
import { SETTINGS_ENV, WorkerExit, settingsMessage, type WorkerMessage } from "../runners/ipc.js";
import { diffPlan, type PlanDiff, type WorkerSpec } from "./plan.js";
import type { WorkerStatus } from "./status-file.js";
import {
  backoffDelay,
  isMessage,
  newSlot,
  snapshotOf,
  stallReason,
  waitExit,
  waitReady,
  type Slot,
  type WorkerCommand,
} from "./slot.js";

export { workerCommand, WORKER_EXEC_ARGV, type WorkerCommand } from "./slot.js";

export interface SupervisorTimings {
  /** a worker with due entries and no progress (or no heartbeat) this long is killed and restarted */
  stallTimeoutMs: number;
  /** max_restarts counts restarts within this window */
  restartWindowMs: number;
  /** grace between SIGTERM and SIGKILL */
  stopTimeoutMs: number;
}

export interface SupervisorOptions {
  logger: Logger;
  timings: SupervisorTimings;
  /** how to start a worker; default: `qrunner start --runner --slice -C` (see workerCommand) */
  command: (spec: WorkerSpec) => WorkerCommand;
  /** first restart delay, doubling up to backoffMaxMs (default 1 s and 60 s) */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** a worker that ran this long before dying starts its backoff over (default 5 min) */
  healthyRunMs?: number;
  /** something `status` shows has changed */
  onChange?: () => void;
  /** every planned worker has sent `ready` (called once) */
  onAllReady?: (count: number) => void;
  /** each heartbeat, with the worker it came from (for the metrics) */
  onHeartbeat?: (spec: WorkerSpec, pid: number, hb: Extract<WorkerMessage, { type: "heartbeat" }>) => void;
  /**
   * Why this worker may not be started now, or null (cluster mode: its slices are not leased). A
   * worker held back stays `stopped` with that reason until a plan without it replaces it.
   */
  holdBack?: (spec: WorkerSpec) => string | null;
}

export class Supervisor {
  private slots: Slot[] = [];
  private stopping = false;
  private announced = false;
  private checkTimer: NodeJS.Timeout | null = null;
  private timings: SupervisorTimings;
  private readonly log: Logger;

  constructor(private readonly opts: SupervisorOptions) {
    this.timings = opts.timings;
    this.log = opts.logger;
  }

  /** Spawn every worker of the plan and start watching for stalls. */
  start(specs: readonly WorkerSpec[]): void {
    this.slots = specs.map((spec) => newSlot(spec));
    for (const slot of this.slots) this.spawn(slot);
    this.checkTimer = setInterval(() => this.checkStalls(), 1000);
    this.checkTimer.unref();
  }

  /**
   * A new config: stop the workers whose spec went away (gracefully, and wait for them so that old
   * and new slices never run side by side), start the new ones, and send SIGHUP to the rest.
   * Workers that were down for good (gave up, bad config) get a fresh start.
   */
  async apply(specs: readonly WorkerSpec[], timings: SupervisorTimings): Promise<PlanDiff> {
    this.timings = timings;
    const diff = diffPlan(
      this.slots.map((s) => s.spec),
      specs,
    );
    if (this.stopping) return diff;
    const gone = this.slots.filter((s) => diff.removed.includes(s.spec));
    await Promise.all(gone.map((s) => this.stopSlot(s)));
    if (this.stopping) return diff;
    const byKey = new Map(this.slots.filter((s) => !gone.includes(s)).map((s) => [s.spec.key, s]));
    this.slots = specs.map((spec) => {
      const slot = byKey.get(spec.key);
      if (!slot) {
        const fresh = newSlot(spec);
        this.spawn(fresh);
        return fresh;
      }
      slot.spec = spec;
      if (slot.child && slot.intent === "run") {
        // SIGHUP's default action is to terminate: a worker still starting gets it once it says ready
        if (slot.state === "ready") this.reloadWorker(slot, slot.child);
        else slot.hupPending = true;
      } else if (!slot.child && slot.timer === null) {
        slot.restartTimes = [];
        slot.failStreak = 0;
        this.spawn(slot);
      }
      return slot;
    });
    this.changed();
    return diff;
  }

  /** SIGUSR1: restart the workers one at a time, each once the previous one is ready again. */
  async rollingRestart(): Promise<void> {
    for (const slot of [...this.slots]) {
      if (this.stopping) return;
      if (!this.slots.includes(slot)) continue;
      await this.stopSlot(slot);
      if (this.stopping || !this.slots.includes(slot)) return;
      slot.restartTimes = [];
      slot.failStreak = 0;
      this.spawn(slot);
      if (!(await waitReady(slot, this.timings.stallTimeoutMs)))
        this.log.warn(
          { runner: slot.spec.runner, slice: slot.spec.slice },
          "worker not ready after restart; going on",
        );
    }
    this.log.info({ workers: this.slots.length }, "rolling restart done");
  }

  /** SIGTERM to every worker, SIGKILL to those still running after stop_timeout. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.checkTimer) clearInterval(this.checkTimer);
    this.checkTimer = null;
    await Promise.all(this.slots.map((s) => this.stopSlot(s)));
  }

  /**
   * SIGKILL the matching workers at once, without the graceful stop (cluster mode: their slices'
   * leases can no longer be trusted); they are not restarted. Resolves once they have exited.
   */
  async kill(match: (spec: WorkerSpec) => boolean): Promise<void> {
    const victims = this.slots.filter((s) => match(s.spec));
    for (const slot of victims) {
      if (slot.timer) clearTimeout(slot.timer);
      slot.timer = null;
      slot.nextStartAt = null;
      slot.intent = "stop";
      if (!slot.child) {
        if (slot.state === "backoff") slot.state = "stopped";
        continue;
      }
      slot.state = "stopping";
      slot.child.kill("SIGKILL");
      this.log.warn(
        { runner: slot.spec.runner, slice: slot.spec.slice, workerPid: slot.child.pid },
        "worker killed: its slice may no longer be worked",
      );
    }
    this.changed();
    await Promise.all(victims.map((s) => waitExit(s, 10_000)));
  }

  /** Send every running worker the message `message(spec)` gives (none when null), over its IPC channel. */
  notify(message: (spec: WorkerSpec) => object | null): void {
    for (const slot of this.slots) {
      const child = slot.child;
      if (!child?.connected) continue;
      const m = message(slot.spec);
      if (m === null) continue;
      try {
        child.send(m, (err) => {
          // the worker is exiting: its exit is handled elsewhere
          if (err) this.log.debug({ workerPid: child.pid, err: describeError(err) }, "cannot message worker");
        });
      } catch {
        // channel closed between the check and the send
      }
    }
  }

  snapshot(): WorkerStatus[] {
    const now = Date.now();
    return this.slots.map((s) => snapshotOf(s, now));
  }

  private changed(): void {
    this.opts.onChange?.();
  }

  private spawn(slot: Slot): void {
    const held = this.opts.holdBack?.(slot.spec) ?? null;
    if (held !== null) {
      Object.assign(slot, { intent: "stop", state: "stopped", lastError: held, nextStartAt: null });
      this.log.warn({ runner: slot.spec.runner, slice: slot.spec.slice, why: held }, "worker not started");
      this.changed();
      return;
    }
    const { file, args, execArgv = [], settings } = this.opts.command(slot.spec);
    const now = Date.now();
    Object.assign(slot, { intent: "run", state: "starting", startedAt: now, lastMessageAt: now, hb: null });
    slot.dueSince = null;
    slot.nextStartAt = null;
    slot.hupPending = false;
    slot.settings = settings ?? null;
    let child: ChildProcess;
    try {
      child = spawn(file, [...execArgv, ...args], {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        env: settings ? { ...process.env, [SETTINGS_ENV]: "1" } : process.env,
      });
    } catch (err) {
      slot.lastError = `cannot start: ${describeError(err)}`;
      this.scheduleRestart(slot, 0);
      return;
    }
    slot.child = child;
    let gone = false;
    const exited = (code: number | null, signal: NodeJS.Signals | null) => {
      if (gone) return;
      gone = true;
      this.onExit(slot, child, code, signal);
    };
    child.on("exit", exited);
    child.on("error", (err) => {
      slot.lastError = `cannot start: ${describeError(err)}`;
      if (child.pid === undefined) exited(null, null); // the spawn itself failed: no exit event follows
    });
    child.on("message", (m: unknown) => this.onMessage(slot, child, m));
    if (child.pid !== undefined && slot.spec.nice !== 0) {
      try {
        os.setPriority(child.pid, slot.spec.nice);
      } catch (err) {
        this.log.warn(
          { runner: slot.spec.runner, nice: slot.spec.nice, err: describeError(err) },
          "cannot set nice",
        );
      }
    }
    this.log.debug(
      { runner: slot.spec.runner, slice: slot.spec.slice, workerPid: child.pid },
      "worker spawned",
    );
    this.changed();
  }

  private onMessage(slot: Slot, child: ChildProcess, m: unknown): void {
    if (slot.child !== child || !isMessage(m)) return;
    const now = Date.now();
    slot.lastMessageAt = now;
    if (m.type === "settings?") {
      this.sendSettings(slot, child);
    } else if (m.type === "ready") {
      if (slot.state === "starting") slot.state = "ready";
      if (slot.hupPending) this.reloadWorker(slot, child);
      slot.hupPending = false;
      this.log.debug(
        { runner: slot.spec.runner, slice: slot.spec.slice, workerPid: child.pid },
        "worker ready",
      );
      for (const f of slot.onReady.splice(0)) f(true);
      this.checkAllReady();
      this.changed();
    } else if (m.type === "heartbeat") {
      slot.hb = m;
      this.opts.onHeartbeat?.(slot.spec, child.pid ?? 0, m);
      if (m.lastError !== undefined) slot.lastError = m.lastError;
      // the stall clock runs only while entries are due and the worker does not say why it waits
      if (m.due === 0 || m.waiting !== undefined) slot.dueSince = null;
      else slot.dueSince ??= now;
    }
  }

  /** A kept worker after an accepted config edit: the new settings over IPC, or SIGHUP to reread the file. */
  private reloadWorker(slot: Slot, child: ChildProcess): void {
    if (slot.settings) this.sendSettings(slot, child);
    else child.kill("SIGHUP");
  }

  /** The master's settings to a worker that takes them over IPC (nothing when it has none yet). */
  private sendSettings(slot: Slot, child: ChildProcess): void {
    const settings = slot.settings?.() ?? null;
    if (settings === null || !child.connected) return;
    try {
      child.send(settingsMessage(settings), (err) => {
        if (err)
          this.log.debug(
            { workerPid: child.pid, err: describeError(err) },
            "cannot send the settings to the worker",
          );
      });
    } catch {
      // channel closed between the check and the send: the worker is exiting
    }
  }

  private onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = null;
    const ranMs = Date.now() - slot.startedAt;
    for (const f of slot.onExit.splice(0)) f();
    for (const f of slot.onReady.splice(0)) f(false);
    const where = { runner: slot.spec.runner, slice: slot.spec.slice, workerPid: child.pid, code, signal };
    if (this.stopping || slot.intent === "stop") {
      slot.state = "stopped";
      this.log.debug(where, "worker stopped");
    } else if (slot.intent === "stall") {
      this.scheduleRestart(slot, ranMs);
    } else if (code === WorkerExit.OK) {
      slot.state = "stopped";
      this.log.warn(where, "worker exited by itself (exit 0); not restarted until the config changes");
    } else if (code === WorkerExit.USAGE) {
      slot.state = "gave-up";
      slot.lastError = "bad command line (exit 64)";
      this.log.error(where, "worker refused its command line (exit 64); not restarted");
    } else if (code === WorkerExit.CONFIG) {
      slot.state = "config-error";
      slot.lastError = "invalid config (exit 78); waiting for a config change";
      this.log.error(
        where,
        "worker found the config invalid (exit 78); not restarted until the config changes",
      );
    } else {
      slot.lastError = signal ? `killed by ${signal}` : `exited with code ${code}`;
      this.log.error({ ...where, ranMs }, "worker exited unexpectedly");
      this.scheduleRestart(slot, ranMs);
    }
    this.changed();
  }

  private scheduleRestart(slot: Slot, ranMs: number): void {
    const now = Date.now();
    // a worker that ran well for a while, or that got work done before it died (killed from outside,
    // not failing at start), starts its backoff over: repeated kills must not stretch restarts to 60 s
    if (ranMs >= (this.opts.healthyRunMs ?? 300_000) || (slot.hb?.handled ?? 0) > 0) slot.failStreak = 0;
    slot.restartTimes = slot.restartTimes.filter((t) => now - t < this.timings.restartWindowMs);
    if (slot.restartTimes.length >= slot.spec.maxRestarts) {
      slot.state = "gave-up";
      this.log.error(
        {
          runner: slot.spec.runner,
          slice: slot.spec.slice,
          restarts: slot.restartTimes.length,
          window: formatDuration(this.timings.restartWindowMs),
          lastError: slot.lastError,
        },
        "worker gave up: too many restarts; fix the cause, then `qrunner reload`",
      );
      return;
    }
    const delay = backoffDelay(
      slot.failStreak,
      this.opts.backoffBaseMs ?? 1000,
      this.opts.backoffMaxMs ?? 60_000,
    );
    slot.failStreak++;
    slot.state = "backoff";
    slot.nextStartAt = now + delay;
    this.log.info(
      { runner: slot.spec.runner, slice: slot.spec.slice, delayMs: delay },
      "restarting worker after backoff",
    );
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (this.stopping) return;
      slot.restartTimes.push(Date.now());
      slot.restarts++;
      this.spawn(slot);
    }, delay);
  }

  private checkStalls(): void {
    const now = Date.now();
    const limit = this.timings.stallTimeoutMs;
    for (const slot of this.slots) {
      const child = slot.child;
      if (!child || slot.intent !== "run") continue;
      const why = stallReason(slot, now, limit);
      if (why === null) continue;
      slot.intent = "stall";
      slot.state = "stalled";
      slot.lastError = `stalled: ${why}`;
      this.log.error(
        { runner: slot.spec.runner, slice: slot.spec.slice, workerPid: child.pid },
        `worker stalled (${why}); killing it`,
      );
      child.kill("SIGKILL");
      this.changed();
    }
  }

  private checkAllReady(): void {
    if (this.announced || this.slots.length === 0 || !this.slots.every((s) => s.state === "ready")) return;
    this.announced = true;
    this.opts.onAllReady?.(this.slots.length);
  }

  /** SIGTERM, wait stop_timeout, then SIGKILL; resolves once the process is gone. */
  private async stopSlot(slot: Slot): Promise<void> {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.nextStartAt = null;
    const child = slot.child;
    slot.intent = "stop";
    if (!child) {
      if (slot.state === "backoff") slot.state = "stopped";
      return;
    }
    slot.state = "stopping";
    this.changed();
    child.kill("SIGTERM");
    if (await waitExit(slot, this.timings.stopTimeoutMs)) return;
    this.log.warn(
      { runner: slot.spec.runner, slice: slot.spec.slice, workerPid: child.pid },
      `worker still running ${formatDuration(this.timings.stopTimeoutMs)} after SIGTERM; killing it`,
    );
    child.kill("SIGKILL");
    await waitExit(slot, 10_000);
  }
}
