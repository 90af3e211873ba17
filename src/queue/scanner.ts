/**
 * Listing a queue directory for one slice, oldest first, in bounded batches.
 *
 * Mailman lists and sorts the whole directory before every dequeue, so a large backlog makes each
 * dequeue slower. Here one streaming pass over the directory keeps only the oldest `limit` names of
 * our slice (a bounded selection, not a full sort), and the batch is served until it runs out. The
 * batch size grows with the backlog (half of what the last pass saw, within bounds), so the cost of
 * the pass per dequeued entry stays about constant however long the queue is.
 */
import { opendirSync } from "node:fs";
import { inSlice, type Slice } from "./slice.js";
import { parseName, sha1OfName, type ParsedName } from "./names.js";

/** Batch sizes: large enough that even the first pass over a big backlog is amortized over many dequeues. */
const MIN_BATCH = 100_000;
const MAX_BATCH = 250_000;
/** Names read per step of a listing pass before the event loop gets a turn. */
const CHUNK = 4096;

export interface ScanResult {
  /** the oldest names of the slice with the wanted extension, sorted oldest first */
  names: string[];
  /** how many such names the pass saw in all */
  seen: number;
}

/** One pass over `dir`, keeping the `limit` oldest `.ext` names whose sha1 is in `slice`. */
export async function scanSlice(
  dir: string,
  slice: Slice,
  ext: ParsedName["ext"],
  limit: number,
): Promise<ScanResult> {
  let kept: string[] = [];
  let seen = 0;
  // read in place, a chunk at a time, and let the event loop run between chunks: an async iterator
  // costs a promise per name (seconds for a million), a whole readdir holds every name at once
  const d = opendirSync(dir, { bufferSize: CHUNK });
  try {
    for (let n = 0; ; n++) {
      if (n === CHUNK) {
        n = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const dirent = d.readSync();
      if (dirent === null) break;
      const name = dirent.name;
      const sha1 = sha1OfName(name, ext);
      if (sha1 === null || !inSlice(slice, sha1)) continue;
      seen++;
      kept.push(name);
      // bounded selection: let the buffer grow to twice the limit, then keep the oldest half
      if (kept.length >= limit * 2) kept = kept.sort().slice(0, limit);
    }
  } finally {
    d.closeSync();
  }
  kept.sort();
  if (kept.length > limit) kept.length = limit;
  return { names: kept, seen };
}

/** A batch of names to serve, refilled by a new pass when empty. */
export class SliceBatch {
  private names: string[] = [];
  private pos = 0;
  private lastSeen = 0;

  constructor(
    private readonly dir: string,
    private readonly slice: Slice,
  ) {}

  /** The next name whose time is due (<= now), or null when the slice holds nothing due. */
  async next(now: number): Promise<string | null> {
    for (let refilled = false; ; refilled = true) {
      if (this.pos < this.names.length) {
        const name = this.names[this.pos] ?? "";
        const p = parseName(name);
        // by the millisecond: entries queued within one get microsecond-apart names (to keep their
        // order) and are all due in it, not some of them a millisecond later
        if (p && Math.floor(p.time) <= now) {
          this.pos++;
          return name;
        }
        // sorted by time: nothing after this one is due either
        if (refilled) return null;
      } else if (refilled) {
        return null;
      }
      await this.refill();
    }
  }

  /** How many entries the last pass saw (the slice's depth at that time). */
  get depthHint(): number {
    return Math.max(this.lastSeen - this.pos, this.names.length - this.pos);
  }

  /** Time (ms) of the earliest entry known not yet due, for a timer; null when none. */
  nextDueTime(): number | null {
    const name = this.names[this.pos];
    return name ? (parseName(name)?.time ?? null) : null;
  }

  /** Forget the batch so the next call makes a fresh pass (e.g. after entries were put back). */
  invalidate(): void {
    this.names = [];
    this.pos = 0;
  }

  private async refill(): Promise<void> {
    const limit = Math.min(MAX_BATCH, Math.max(MIN_BATCH, Math.floor(this.lastSeen / 2)));
    const r = await scanSlice(this.dir, this.slice, "qf", limit);
    this.names = r.names;
    this.pos = 0;
    this.lastSeen = r.seen;
  }
}
