/**
 * The Switchboard: one queue directory seen through one slice of the sha1 space.
 *
 * States on disk: `<time>+<sha1>.tmp` while being written (invisible to readers), `.qf` when queued,
 * `.wip` while a runner handles it. `enqueue` resolves only once the file and its directory entry are
 * fsynced. A crash leaves `.wip` files, which `recover` puts back (or shunts once an entry has crashed
 * its runner too often). Workers of one runner never lock each other: each lists only its own slice,
 * and the `.qf` → `.wip` rename is atomic, so even overlapping slices never hand out an entry twice.
 */
import { renameSync } from "node:fs";
import { mkdir, rename, unlink } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { CorruptEntryError, QueueUnavailableError, describeError } from "../util/errors.js";
import { DirSyncer } from "../util/dirsync.js";
import { isErrno, unavailable } from "./files.js";
import { commitEntries, type EnqueueOptions } from "./commit.js";
import { moveToBad, readEntry } from "./read.js";
import { EXT_QUEUED, EXT_WIP, parseName } from "./names.js";
import { SliceBatch, scanSlice } from "./scanner.js";
import { SparePool } from "./spares.js";
import { idsInSlice, putBackAbandoned, removeStaleTemps } from "./leftovers.js";
import { WHOLE, type Slice } from "./slice.js";
import type { Entry, EntryMeta, NewEntryMeta } from "./types.js";

export interface SwitchboardOptions {
  /** the queue root (`qfiles`) */
  root: string;
  /** the queue's name: its directory under the root */
  queue: string;
  /** default: the whole space */
  slice?: Slice;
  /** recoveries after a crash before an entry is shunted as poison (default 3) */
  recoveryLimit?: number;
  logger?: Logger;
  /**
   * Recycled files for new entries and finished ones (see spares.ts). Pass one pool to every
   * Switchboard of a process so that one queue's finished entries serve another's new ones; by
   * default each Switchboard has its own; `false` creates and unlinks every file.
   */
  spares?: SparePool | false;
}

const QUEUE_NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;

export class Switchboard {
  readonly dir: string;
  readonly queue: string;
  readonly slice: Slice;
  private readonly recoveryLimit: number;
  private readonly logger: Logger | undefined;
  private readonly dirSync: DirSyncer;
  private readonly batch: SliceBatch;
  private readonly spares: SparePool | null;

  private constructor(opts: SwitchboardOptions) {
    if (!QUEUE_NAME_RE.test(opts.queue))
      throw new RangeError(`not a queue name: ${JSON.stringify(opts.queue)}`);
    this.queue = opts.queue;
    this.dir = path.join(opts.root, opts.queue);
    this.slice = opts.slice ?? WHOLE;
    this.recoveryLimit = opts.recoveryLimit ?? 3;
    this.logger = opts.logger;
    this.dirSync = new DirSyncer(this.dir);
    this.batch = new SliceBatch(this.dir, this.slice);
    this.spares = opts.spares === false ? null : (opts.spares ?? new SparePool(opts.root));
  }

  /** Open a queue, creating its directory (0700) when missing. */
  static async open(opts: SwitchboardOptions): Promise<Switchboard> {
    const sb = new Switchboard(opts);
    try {
      await mkdir(sb.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new QueueUnavailableError(`cannot create queue directory ${sb.dir}: ${describeError(err)}`, {
        cause: err,
      });
    }
    return sb;
  }

  /** Queue one entry durably; resolves with its sha1 once file and directory are fsynced. */
  async enqueue(message: Buffer, meta: NewEntryMeta, opts: EnqueueOptions = {}): Promise<string> {
    const [id] = await this.enqueueMany([{ message, meta, ...opts }]);
    return id ?? "";
  }

  /**
   * Queue several entries with one directory fsync (group commit). All are durable when it resolves;
   * on failure none is left half-written (temp files are removed), though some may have been queued.
   * The order of work, which the durability of every entry rests on, is in commitEntries (commit.ts).
   */
  enqueueMany(
    items: readonly ({ message: Buffer; meta: NewEntryMeta } & EnqueueOptions)[],
  ): Promise<string[]> {
    return commitEntries(this.dir, this.spares, this.dirSync, items);
  }

  /**
   * The next due entry of this slice, oldest first, marked in progress (`.wip`). A file that cannot be
   * read or parsed is moved to `bad` (logged) and skipped. Null when nothing is due.
   */
  async dequeue(now: number = Date.now()): Promise<Entry | null> {
    for (;;) {
      const name = await this.batch.next(now);
      if (name === null) return null;
      const p = parseName(name);
      if (!p) continue;
      const wip = path.join(this.dir, p.base + EXT_WIP);
      try {
        renameSync(path.join(this.dir, name), wip);
      } catch (err) {
        if (isErrno(err, "ENOENT")) continue; // taken by someone else, or removed by an operator
        throw unavailable(`cannot mark ${name} in progress`, err);
      }
      try {
        return await readEntry(this.queue, wip, name);
      } catch (err) {
        if (err instanceof CorruptEntryError) {
          await moveToBad(this.dir, this.queue, wip, p.base, err.message, this.logger);
          continue;
        }
        throw err;
      }
    }
  }

  /** Take one named entry (as `queue list` shows it) in progress, as dequeue would; null when gone. */
  async take(name: string): Promise<Entry | null> {
    const p = parseName(name);
    if (!p || p.ext !== "qf") return null;
    const wip = path.join(this.dir, p.base + EXT_WIP);
    try {
      await rename(path.join(this.dir, name), wip);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return null;
      throw unavailable(`cannot take ${name}`, err);
    }
    return readEntry(this.queue, wip, name);
  }

  /** Remove an entry for good: unlinked, never recycled (an operator's `queue delete`). */
  async remove(entry: Entry): Promise<void> {
    const p = parseName(entry.name);
    if (!p) return;
    await unlink(path.join(this.dir, p.base + EXT_WIP)).catch((err: unknown) => {
      if (!isErrno(err, "ENOENT")) throw unavailable(`cannot remove ${entry.name}`, err);
    });
  }

  /** Done with an entry: its file goes to the spare pool, or is unlinked. */
  async finish(entry: Entry): Promise<void> {
    const p = parseName(entry.name);
    if (!p) return;
    const wip = path.join(this.dir, p.base + EXT_WIP);
    try {
      if (this.spares?.offer(wip)) return;
      await unlink(wip);
    } catch (err) {
      if (!isErrno(err, "ENOENT")) throw unavailable(`cannot remove ${entry.name}`, err);
    }
  }

  /** Put an in-progress entry back, with new metadata, due at `notBefore`; the new file is durable first. */
  async requeue(entry: Entry, meta: EntryMeta, notBefore?: number): Promise<void> {
    await this.enqueueMany([
      { message: entry.message, meta, id: entry.id, ...(notBefore !== undefined ? { notBefore } : {}) },
    ]);
    await this.finish(entry);
    this.batch.invalidate();
  }

  /** Move an in-progress entry to the shunt queue with the reason and its origin; durable before removal. */
  async shunt(entry: Entry, reason: string, shunt: Switchboard): Promise<void> {
    const meta: EntryMeta = { ...entry.meta, shuntedFrom: this.queue, shuntReason: reason };
    // the same name every time (id and time kept): shunting again after a crash replaces the copy
    await shunt.enqueueMany([{ message: entry.message, meta, id: entry.id, notBefore: entry.time }]);
    await this.finish(entry);
    this.logger?.warn({ queue: this.queue, entry: entry.id, reason }, "entry shunted");
  }

  /**
   * After a crash: put back this slice's in-progress entries, counting recoveries; an entry recovered
   * more than `recoveryLimit` times is shunted as poison. Stale temp files are removed. Run it only
   * when no other worker of this slice is running.
   */
  async recover(shunt?: Switchboard): Promise<{ recovered: number; shunted: number }> {
    let recovered = 0;
    let shunted = 0;
    /** which entries, for the log (a few hundred at most: those in hand when the workers died) */
    const ids: string[] = [];
    const wips = (await scanSlice(this.dir, this.slice, "wip", Number.MAX_SAFE_INTEGER)).names;
    const queued = wips.length ? await this.queuedIds() : new Set<string>();
    // a shunt that crashed after writing its copy: the copy in shunt stands
    const shuntedIds = wips.length && shunt ? await shunt.queuedIds(WHOLE) : new Set<string>();
    for (const name of wips) {
      const p = parseName(name);
      if (!p) continue;
      const wip = path.join(this.dir, name);
      // a requeue that crashed after writing its successor: the successor stands
      if (queued.has(p.sha1) || shuntedIds.has(p.sha1)) {
        await unlink(wip).catch(() => undefined);
        continue;
      }
      let entry: Entry;
      try {
        entry = await readEntry(this.queue, wip, p.base + EXT_QUEUED);
      } catch (err) {
        if (err instanceof CorruptEntryError) {
          await moveToBad(this.dir, this.queue, wip, p.base, err.message, this.logger);
          continue;
        }
        throw err;
      }
      const meta: EntryMeta = { ...entry.meta, recoveries: entry.meta.recoveries + 1 };
      if (meta.recoveries > this.recoveryLimit && shunt) {
        const reason = `poison: its runner crashed while handling it ${meta.recoveries} times`;
        await this.shunt({ ...entry, meta }, reason, shunt);
        shunted++;
      } else {
        await this.enqueueMany([{ message: entry.message, meta, id: entry.id, notBefore: p.time }]);
        await unlink(wip).catch(() => undefined);
        recovered++;
        if (ids.length < 500) ids.push(entry.id);
      }
    }
    await this.removeStaleTemps();
    this.batch.invalidate();
    if (recovered || shunted)
      this.logger?.info(
        { queue: this.queue, recovered, shunted, entries: ids },
        "recovered in-progress entries",
      );
    return { recovered, shunted };
  }

  /**
   * For queues no runner serves (`hold`, `shunt`): put back `.wip` files that an operator's command
   * left when it crashed mid-move, once they have been in progress for `minAgeMs` (their ctime, set
   * by the rename): younger ones may belong to a command still running. Returns how many.
   */
  async recoverAbandoned(minAgeMs: number): Promise<number> {
    const n = await putBackAbandoned(this.dir, this.slice, minAgeMs);
    if (n) this.batch.invalidate();
    return n;
  }

  private queuedIds(slice: Slice = this.slice): Promise<Set<string>> {
    return idsInSlice(this.dir, slice, "qf");
  }

  /** Remove temp files of this slice left by writers that crashed (older than 10 minutes). */
  removeStaleTemps(): Promise<void> {
    return removeStaleTemps(this.dir, this.slice);
  }

  /** Entries of this slice that are queued now and due, as far as the last listing knows. */
  get depthHint(): number {
    return this.batch.depthHint;
  }

  /** ms epoch when the earliest not-yet-due entry of the last listing falls due; null when unknown. */
  nextDueTime(): number | null {
    return this.batch.nextDueTime();
  }

  /** Read an entry by file name without taking it (for inspection). */
  async peek(name: string): Promise<Entry> {
    return readEntry(this.queue, path.join(this.dir, name), name);
  }

  /** Directory fsyncs this Switchboard's enqueues started: concurrent enqueues share one. */
  get directoryFsyncs(): number {
    return this.dirSync.fsyncs;
  }

  /**
   * Part of the lifecycle callers follow (open, use, close), so a Switchboard that comes to hold
   * descriptors can release them here; today it holds none between calls and there is nothing to do.
   */
  close(): void {}
}
// EnqueueOptions is the option type of enqueue; it lives with the code that honours it (commit.ts)
export type { EnqueueOptions };
