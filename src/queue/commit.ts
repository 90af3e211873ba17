/**
 * The enqueue side of the Switchboard: new entries written and made durable, several at a time with
 * one directory fsync (group commit). Kept apart from switchboard.ts, whose part is claiming, finishing
 * and recovering entries, because every acknowledgement of the queue rests on the order of operations
 * here; each path that writes an entry (enqueue, requeue, shunt, recover) comes through this function.
 */
import { closeSync, renameSync, rmSync } from "node:fs";
import { QueueUnavailableError } from "../util/errors.js";
import { fsyncFd, type DirSyncer } from "../util/dirsync.js";
import { fullMeta, unavailable } from "./files.js";
import type { SparePool } from "./spares.js";
import type { NewEntryMeta } from "./types.js";
import { writeTemp, type WrittenTemp } from "./write.js";

export interface EnqueueOptions {
  /** not to be handled before this time (ms epoch); it becomes the name's time prefix */
  notBefore?: number;
  /** keep this sha1 (an entry moving between queues keeps its id); default a fresh one */
  id?: string;
}

/**
 * Queue `items` into the queue directory `dir` (Switchboard.enqueueMany): all are durable when it
 * resolves; on failure none is left half-written (temp files are removed), though some may be queued.
 *
 * Order of work: write every temp file, rename each to its `.qf` name, then fsync the files and the
 * directory together. Renaming before the file fsync is what lets one journal commit carry the data,
 * the inode and the new name (on ext4 a file fsync commits the rename with it, so the directory
 * fsync that follows finds nothing left to write); fsync first, rename second costs two commits.
 * Nothing is acknowledged before both fsyncs return. A reader may see the `.qf` name a moment
 * earlier, with its content complete (written before the rename); only a power loss in that moment
 * can leave a short file under the name, which readers move to `bad`: it was never acknowledged.
 */
export async function commitEntries(
  dir: string,
  spares: SparePool | null,
  dirSync: DirSyncer,
  items: readonly ({ message: Buffer; meta: NewEntryMeta } & EnqueueOptions)[],
): Promise<string[]> {
  const now = Date.now();
  const written: WrittenTemp[] = [];
  try {
    for (const it of items) written.push(writeTemp(dir, spares, it.message, fullMeta(it.meta, now), it));
    for (const w of written) {
      renameSync(w.tmp, w.final);
      w.renamed = true;
    }
  } catch (err) {
    // on a disk that fills up half-way, the temp files that did fit are removed too, instead of
    // holding space until a recovery
    for (const w of written) {
      closeSync(w.fd);
      if (!w.renamed) rmSync(w.tmp, { force: true });
    }
    throw err instanceof QueueUnavailableError ? err : unavailable(`cannot queue into ${dir}`, err);
  }
  // every fsync settles before its descriptor is closed (a closed number may be reused at once)
  const synced = await Promise.allSettled([...written.map((w) => fsyncFd(w.fd)), dirSync.sync()]);
  for (const w of written) closeSync(w.fd);
  const failed = synced.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw unavailable(`cannot sync ${dir}`, failed.reason);
  return written.map((w) => w.id);
}
