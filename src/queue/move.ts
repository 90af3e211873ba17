/**
 * The work behind `queue requeue|hold|release|delete`, through the Switchboard: each entry is taken
 * (`.qf` → `.wip`, so no runner picks it up meanwhile), its successor is written durably
 * (`enqueueMany` with the same id, one group commit per chunk), and only then is the original removed.
 * A crash at any point leaves the entry queued, taken (`.wip`, recovered by its runner's next start;
 * recovery drops a `.wip` whose successor is already queued in the same queue), or in both places:
 * never nowhere.
 */
import { rename } from "node:fs/promises";
import path from "node:path";
import { HOLD_QUEUE, type EntrySummary } from "./inspect.js";
import { parseName } from "./names.js";
import { Switchboard } from "./switchboard.js";
import type { Entry, EntryMeta, JsonValue } from "./types.js";
import { QrunnerError, describeError } from "../util/errors.js";

/** A `.wip` in hold or shunt older than this was left by a crashed command. */
const ABANDONED_MS = 10 * 60_000;

export type Op = "requeue" | "hold" | "release" | "delete";

/** A move that stopped half-way: the entries not yet moved are back in their queue. */
export class QueueOpError extends QrunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("EQUEUE_OP", message, options);
  }
}

/** Where an entry goes and with what metadata; null: nowhere (deleted). */
export interface Successor {
  queue: string;
  meta: EntryMeta;
  notBefore: number;
}

/** The keys `hold` adds to meta.extra; `release` takes them out again. */
const HELD_KEYS = ["heldFrom", "heldAt", "heldWithoutExtra"] as const;

/** Queues `release` may return an entry to (a runner's queue, or shunt). */
export function releasable(queue: unknown, allowed: readonly string[]): queue is string {
  return typeof queue === "string" && allowed.includes(queue);
}

/**
 * The successor of a taken entry, or a reason to leave it where it is. Hold keeps the file name's time
 * and release restores the metadata exactly, so hold + release gives back the same entry, byte for byte.
 */
export function successor(
  op: Op,
  e: Entry,
  now: number,
  origins: readonly string[],
): Successor | null | string {
  switch (op) {
    case "delete":
      return null;
    case "requeue":
      return { queue: e.queue, meta: { ...e.meta, deliverAfter: now }, notBefore: now };
    case "hold": {
      const extra: { [key: string]: JsonValue } = { ...(e.meta.extra ?? {}), heldFrom: e.queue, heldAt: now };
      if (e.meta.extra === undefined) extra["heldWithoutExtra"] = true;
      return { queue: HOLD_QUEUE, meta: { ...e.meta, extra }, notBefore: e.time };
    }
    case "release": {
      const from = e.meta.extra?.["heldFrom"];
      if (!releasable(from, origins))
        return `no origin queue recorded (heldFrom: ${JSON.stringify(from ?? null)})`;
      const { extra = {}, ...rest } = e.meta;
      const kept = Object.fromEntries(
        Object.entries(extra).filter(([k]) => !(HELD_KEYS as readonly string[]).includes(k)),
      );
      const meta: EntryMeta = extra["heldWithoutExtra"] === true ? rest : { ...e.meta, extra: kept };
      return { queue: from, meta, notBefore: e.time };
    }
  }
}

export interface MoveResult {
  entry: Entry;
  /** the queue it went to; null when deleted */
  to: string | null;
}

export interface MoveCallbacks {
  /** after each entry is done with (moved, deleted, skipped or gone) */
  tick(): void;
  moved(r: MoveResult): void;
  /** an entry left where it was, and why */
  skipped(e: EntrySummary, why: string): void;
}

/** At most this many entries, or this many message bytes, in hand (and in memory) at once. */
const CHUNK_ENTRIES = 256;
const CHUNK_BYTES = 32 * 1024 * 1024;

/**
 * Apply `op` to the targets, queue by queue, in chunks. Throws QueueOpError when a successor cannot
 * be written (disk full, permissions); the entries of that chunk are put back first.
 */
export async function applyOp(
  root: string,
  op: Op,
  targets: readonly EntrySummary[],
  now: number,
  origins: readonly string[],
  cb: MoveCallbacks,
): Promise<void> {
  const boards = new Map<string, Switchboard>();
  const board = async (queue: string): Promise<Switchboard> => {
    let sb = boards.get(queue);
    if (!sb) {
      boards.set(queue, (sb = await Switchboard.open({ root, queue })));
      // no runner recovers these queues: take back what a crashed earlier command left in progress
      if (queue === "hold" || queue === "shunt") await sb.recoverAbandoned(ABANDONED_MS);
    }
    return sb;
  };
  let i = 0;
  while (i < targets.length) {
    const queue = targets[i]?.queue ?? "";
    const src = await board(queue);
    const taken: Entry[] = [];
    let bytes = 0;
    while (
      i < targets.length &&
      targets[i]?.queue === queue &&
      taken.length < CHUNK_ENTRIES &&
      bytes < CHUNK_BYTES
    ) {
      const t = targets[i++] as EntrySummary;
      const e = await takeOne(src, t, cb);
      if (!e) continue;
      taken.push(e);
      bytes += e.message.length;
    }
    await moveChunk(src, taken, op, now, origins, board, cb);
  }
}

async function takeOne(src: Switchboard, t: EntrySummary, cb: MoveCallbacks): Promise<Entry | null> {
  let e: Entry | null;
  try {
    e = await src.take(t.name);
  } catch (err) {
    // unreadable: give it back untouched; its runner moves such files to bad
    await untake(src, t.name);
    cb.skipped(t, `unreadable (${describeError(err)}); left for its runner`);
    cb.tick();
    return null;
  }
  if (!e) {
    cb.skipped(t, "gone meanwhile (taken by a runner, or removed)");
    cb.tick();
  }
  return e;
}

async function moveChunk(
  src: Switchboard,
  taken: readonly Entry[],
  op: Op,
  now: number,
  origins: readonly string[],
  board: (q: string) => Promise<Switchboard>,
  cb: MoveCallbacks,
): Promise<void> {
  // group the successors by target queue: one group commit (one directory fsync) per group
  const groups = new Map<
    string,
    { entries: Entry[]; items: { message: Buffer; meta: EntryMeta; id: string; notBefore: number }[] }
  >();
  const deleted: Entry[] = [];
  for (const e of taken) {
    const s = successor(op, e, now, origins);
    if (typeof s === "string") {
      await untake(src, e.name);
      cb.skipped(summaryOf(e), s);
      cb.tick();
    } else if (s === null) deleted.push(e);
    else {
      let g = groups.get(s.queue);
      if (!g) groups.set(s.queue, (g = { entries: [], items: [] }));
      g.entries.push(e);
      g.items.push({ message: e.message, meta: s.meta, id: e.id, notBefore: s.notBefore });
    }
  }
  for (const e of deleted) {
    await src.remove(e);
    cb.moved({ entry: e, to: null });
    cb.tick();
  }
  const pending = [...groups.entries()];
  for (let g = 0; g < pending.length; g++) {
    const [queue, group] = pending[g] as (typeof pending)[number];
    try {
      await (await board(queue)).enqueueMany(group.items);
    } catch (err) {
      // nothing of this group (or the ones after it) was moved: put them all back as they were
      for (const [, rest] of pending.slice(g)) for (const e of rest.entries) await untake(src, e.name);
      throw new QueueOpError(`cannot write to ${path.join(src.dir, "..", queue)}: ${describeError(err)}`, {
        cause: err,
      });
    }
    // the successors are durable: only now do the originals go
    for (const e of group.entries) {
      await src.finish(e);
      cb.moved({ entry: e, to: queue });
      cb.tick();
    }
  }
}

/** Undo a take: the `.wip` goes back to the `.qf` name it had (a rename: no space needed). */
async function untake(src: Switchboard, name: string): Promise<void> {
  const p = parseName(name);
  if (!p) return;
  await rename(path.join(src.dir, `${p.base}.wip`), path.join(src.dir, name)).catch(() => undefined);
}

function summaryOf(e: Entry): EntrySummary {
  return {
    queue: e.queue,
    id: e.id,
    name: e.name,
    state: "queued",
    time: e.time,
    size: e.message.length,
    meta: e.meta,
  };
}
