/**
 * Runs the worker processes of a plan: spawns each one with an IPC channel, restarts those that die
 * (exponential backoff, up to max_restarts within the restart window), kills and restarts stalled
 * ones, replaces the ones a config edit changed, and stops them all gracefully. The rules for
 * restarting are in restart.ts, the spawning and IPC mechanics in worker-process.ts, the order of a
 * cold start in start-waves.ts.
 */
import type { ChildProcess } from "node:child_process";
import type { Logger } from "../util/log.js";
import { formatDuration } from "../util/units.js";
import type { WorkerMessage } from "../protocol/worker.js";
import { diffPlan, type PlanDiff, type WorkerSpec } from "./plan.js";
import { judgeExit, markStalled, restartDelay, type RestartTuning } from "./restart.js";
import type { WorkerStatus } from "./status-file.js";
import {
  isMessage,
  newSlot,
  snapshotOf,
  waitExit,
  waitReady,
  type Slot,
  type WorkerCommand,
} from "./slot.js";
import { StartWaves } from "./start-waves.js";
import { reloadWorker, sendMessage, sendSettings, spawnWorker } from "./worker-process.js";

export interface SupervisorTimings {
  /** a worker with due entries and no progress (or no heartbeat) this long is killed and restarted */
  stallTimeoutMs: number;
  /** max_restarts counts restarts within this window */
  restartWindowMs: number;
  /** grace between SIGTERM and SIGKILL */
  stopTimeoutMs: number;
}

/** The backoff and health settings (backoffBaseMs, backoffMaxMs, healthyRunMs) are RestartTuning's. */
export interface SupervisorOptions extends RestartTuning {
  logger: Logger;
  timings: SupervisorTimings;
  /** how to start a worker; default: `qrunner start --runner --slice -C` (see workerCommand) */
  command: (spec: WorkerSpec) => WorkerCommand;
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
  /** the environment of this worker (default the master's): see worker-env.ts */
  env?: (spec: WorkerSpec) => NodeJS.ProcessEnv;
}

export class Supervisor {
  private slots: Slot[] = [];
  private stopping = false;
  private announced = false;
  private checkTimer: NodeJS.Timeout | null = null;
  private readonly waves = new StartWaves({
    slots: () => this.slots,
    spawn: (slot) => this.spawn(slot),
    stopping: () => this.stopping,
  });
  private timings: SupervisorTimings;
  private readonly log: Logger;

  constructor(private readonly opts: SupervisorOptions) {
    this.timings = opts.timings;
    this.log = opts.logger;
  }

  /** Spawn every worker of the plan, the mail path's first (start-waves.ts), and start watching for stalls. */
  start(specs: readonly WorkerSpec[]): void {
    this.slots = specs.map((spec) => newSlot(spec));
    this.waves.start(this.slots);
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
        if (slot.state === "ready") reloadWorker(slot, slot.child, this.log);
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
    this.waves.cancel();
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
      sendMessage(child, m, this.log);
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
    const spawned = spawnWorker(
      slot,
      this.opts.command(slot.spec),
      this.log,
      {
        exit: (child, code, signal) => this.onExit(slot, child, code, signal),
        message: (child, m) => this.onMessage(slot, child, m),
      },
      this.opts.env?.(slot.spec),
    );
    if (!spawned) {
      this.scheduleRestart(slot, 0);
      return;
    }
    this.changed();
  }

  private onMessage(slot: Slot, child: ChildProcess, m: unknown): void {
    if (slot.child !== child || !isMessage(m)) return;
    const now = Date.now();
    slot.lastMessageAt = now;
    if (m.type === "settings?") {
      sendSettings(slot, child, this.log);
    } else if (m.type === "ready") {
      if (slot.state === "starting") slot.state = "ready";
      if (slot.hupPending) reloadWorker(slot, child, this.log);
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
      this.waves.progress();
    }
  }

  private onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = null;
    const ranMs = Date.now() - slot.startedAt;
    for (const f of slot.onExit.splice(0)) f();
    for (const f of slot.onReady.splice(0)) f(false);
    if (judgeExit(slot, child, code, signal, ranMs, this.stopping, this.log))
      this.scheduleRestart(slot, ranMs);
    this.waves.progress();
    this.changed();
  }

  /** Restart the worker after the backoff the restart policy sets, unless it gave up. */
  private scheduleRestart(slot: Slot, ranMs: number): void {
    const delay = restartDelay(slot, ranMs, this.opts, this.timings.restartWindowMs, this.log);
    if (delay === null) return;
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
      if (!markStalled(slot, child, now, limit, this.log)) continue;
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
