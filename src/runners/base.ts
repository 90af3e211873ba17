/**
 * The runner loop, shared by every runner. A runner only says how to handle one entry; this loop
 * lists its slice, hands entries to it (up to `concurrency` at once), finishes or shunts them, wakes
 * as soon as a file lands in the queue (inotify via fs.watch, with a poll every `sleep` as the safety
 * net), and on stop finishes the entries in hand before it returns. One entry's failure never stops it.
 */
import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "pino";
import { describeError, PartialProgressError, QueueUnavailableError } from "../util/errors.js";
import type { Switchboard } from "../queue/switchboard.js";
import { parseName } from "../queue/names.js";
import { inSlice } from "../queue/slice.js";
import type { Entry, EntryMeta } from "../queue/types.js";
import type { RunnerContext } from "./context.js";

/** What a handler wants done with its entry once it returns. */
export type HandleResult =
  | void
  /** put the entry back in this queue with new metadata, due at `notBefore` */
  | { requeue: { meta: EntryMeta; notBefore?: number } }
  /** leave the entry queued as it was (e.g. the runner must wait); it is retried after `notBefore` */
  | { release: { notBefore: number } };

/** How often a runner looks for temp files left by crashed writers (recovery at start does too). */
const TEMP_SWEEP_MS = 5 * 60_000;

export interface Handler {
  handle(entry: Entry, log: Logger): Promise<HandleResult>;
  /**
   * Fields every log line about this entry carries besides queue and entry id (e.g. its list or its
   * host): the loop builds one child logger per entry with them, rather than the handler a second one.
   */
  bindings?(entry: Entry): Record<string, unknown>;
  /** why the runner should not work now although entries are due (e.g. "waiting for idle"), or null */
  waitReason?(): Promise<string | null>;
  /** called on every wake before dequeuing (periodic chores such as expiring held posts) */
  tick?(): Promise<void>;
  close?(): Promise<void>;
}

export interface LoopOptions {
  concurrency: number;
  /** poll interval, ms */
  sleep: number;
  /** handle what the slice holds now, then return */
  once: boolean;
  /**
   * Cluster mode: called before each entry is taken and again before it is handled; ends the process
   * when the slice's lease deadline has passed (a timer does too, but may run late on a busy loop).
   */
  fence?: () => void;
}

export interface LoopStats {
  handled: number;
  failed: number;
  lastProgress: number;
  inHand: number;
  lastError?: string;
  waiting?: string;
}

export class RunnerLoop {
  readonly stats: LoopStats = { handled: 0, failed: 0, lastProgress: Date.now(), inHand: 0 };
  private wakeUp: (() => void) | null = null;
  private pendingWake = false;
  private watcher: FSWatcher | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private nextSweep = Date.now() + TEMP_SWEEP_MS;

  constructor(
    private readonly ctx: RunnerContext,
    private readonly queue: Switchboard,
    private readonly shunt: Switchboard,
    private readonly handler: Handler,
    private readonly opts: LoopOptions,
  ) {}

  /** Wake the loop now (a file landed, a signal, a slot freed). */
  wake(): void {
    this.pendingWake = true;
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** due entries of this slice as far as the last listing knows */
  get due(): number {
    return this.queue.depthHint + this.stats.inHand;
  }

  async run(): Promise<void> {
    const { signal } = this.ctx;
    const onAbort = (): void => this.wake();
    signal.addEventListener("abort", onAbort);
    this.startWatching();
    try {
      while (!signal.aborted) {
        await this.handler.tick?.();
        await this.sweepTemps();
        const waiting = this.handler.waitReason ? await this.handler.waitReason() : null;
        this.setWaiting(waiting);
        let took = 0;
        if (waiting === null) took = await this.fill();
        if (this.opts.once && took === 0 && this.inFlight.size === 0) break;
        if (took === 0 || this.inFlight.size >= this.opts.concurrency) await this.sleep();
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.watcher?.close();
      this.watcher = null;
      // finish the entries in hand: never shunt or drop an entry because we were asked to stop
      await Promise.allSettled([...this.inFlight]);
    }
  }

  /** Now and then, remove temp files that writers killed mid-write left (they never became entries). */
  private async sweepTemps(): Promise<void> {
    const now = Date.now();
    if (now < this.nextSweep) return;
    this.nextSweep = now + TEMP_SWEEP_MS;
    await this.queue
      .removeStaleTemps()
      .catch((err: unknown) => this.noteError(err, "cannot remove stale temp files"));
  }

  /** Start handlers until the concurrency limit or the slice runs dry; returns how many were started. */
  private async fill(): Promise<number> {
    let took = 0;
    while (this.inFlight.size < this.opts.concurrency && !this.ctx.signal.aborted) {
      let entry: Entry | null;
      this.opts.fence?.();
      try {
        entry = await this.queue.dequeue();
      } catch (err) {
        this.noteError(err, "cannot dequeue");
        return took;
      }
      if (!entry) break;
      this.opts.fence?.();
      took++;
      const p = this.handleOne(entry).finally(() => {
        this.inFlight.delete(p);
        this.stats.inHand = this.inFlight.size;
        this.wake();
      });
      this.inFlight.add(p);
      this.stats.inHand = this.inFlight.size;
    }
    return took;
  }

  private async handleOne(entry: Entry): Promise<void> {
    let log: Logger;
    try {
      log = this.ctx.logger.child({
        queue: this.queue.queue,
        entry: entry.id,
        ...this.handler.bindings?.(entry),
      });
    } catch (err) {
      log = this.ctx.logger.child({ queue: this.queue.queue, entry: entry.id });
      await this.fail(entry, err, log);
      return;
    }
    let result: HandleResult;
    try {
      result = await this.handler.handle(entry, log);
    } catch (err) {
      await this.fail(entry, err, log);
      return;
    }
    try {
      if (result && "requeue" in result)
        await this.queue.requeue(entry, result.requeue.meta, result.requeue.notBefore);
      else if (result && "release" in result)
        await this.queue.requeue(entry, entry.meta, result.release.notBefore);
      else await this.queue.finish(entry);
      this.stats.handled++;
      this.stats.lastProgress = Date.now();
    } catch (err) {
      // the entry stays in progress on disk and is recovered at the next start: nothing is lost
      this.noteError(err, "cannot finish entry", log);
    }
  }

  private async fail(entry: Entry, err: unknown, log: Logger): Promise<void> {
    this.stats.failed++;
    if (err instanceof QueueUnavailableError) {
      // the successor could not be written (disk full...): keep the entry and retry later
      this.noteError(err, "cannot pass entry on; will retry", log);
      // recipients already served are not served again: keep only what is left
      const meta = err instanceof PartialProgressError ? { ...entry.meta, ...err.remaining } : entry.meta;
      await this.queue
        .requeue(entry, meta, Date.now() + this.opts.sleep)
        .catch((e: unknown) => this.noteError(e, "cannot put entry back; it will be recovered", log));
      return;
    }
    const reason = describeError(err);
    try {
      await this.queue.shunt(entry, reason, this.shunt);
      this.stats.lastProgress = Date.now();
      this.stats.lastError = reason;
      log.error({ err, reason }, "handler failed; entry shunted");
    } catch (e) {
      this.noteError(e, "cannot shunt entry; it will be recovered", log);
    }
  }

  private noteError(err: unknown, what: string, log: Logger = this.ctx.logger): void {
    this.stats.lastError = `${what}: ${describeError(err)}`;
    log.error({ err, queue: this.queue.queue }, what);
  }

  private setWaiting(reason: string | null): void {
    if (reason === (this.stats.waiting ?? null)) return;
    if (reason) {
      this.stats.waiting = reason;
      this.ctx.logger.info({ queue: this.queue.queue, reason }, "waiting");
    } else {
      delete this.stats.waiting;
    }
  }

  /** Sleep until woken, the poll interval passes, or the earliest deferred entry falls due. */
  private sleep(): Promise<void> {
    if (this.pendingWake || this.ctx.signal.aborted) {
      this.pendingWake = false;
      return Promise.resolve();
    }
    let ms = this.opts.sleep;
    const due = this.queue.nextDueTime();
    if (due !== null) ms = Math.max(5, Math.min(ms, due - Date.now() + 5));
    return new Promise((resolve) => {
      const t = setTimeout(() => this.wake(), ms);
      this.wakeUp = () => {
        clearTimeout(t);
        this.pendingWake = false;
        resolve();
      };
    });
  }

  private startWatching(): void {
    try {
      this.watcher = watch(this.queue.dir, { persistent: false }, (_event, name) => {
        // wake only for files of our own slice: other workers' traffic in a shared directory is not ours
        const p = name === null ? null : parseName(String(name));
        if (name === null || (p !== null && p.ext === "qf" && inSlice(this.queue.slice, p.sha1))) this.wake();
      });
      this.watcher.on("error", (err) => {
        this.ctx.logger.warn({ err, queue: this.queue.queue }, "queue watch failed; polling only");
        this.watcher?.close();
        this.watcher = null;
      });
    } catch (err) {
      this.ctx.logger.warn({ err, queue: this.queue.queue }, "cannot watch queue; polling only");
    }
  }
}
