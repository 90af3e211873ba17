/** Writing an entry's temp file: a recycled file when the pool has one, else a new one. */
import { closeSync, fstatSync, ftruncateSync, openSync, rmSync, unlinkSync } from "node:fs";
import path from "node:path";
import { encodeEntry } from "./entry.js";
import { unavailable, writeAllSync } from "./files.js";
import { EXT_QUEUED, EXT_TMP, entrySha1, exactTimePrefix, timePrefix } from "./names.js";
import type { SparePool } from "./spares.js";
import type { EntryMeta } from "./types.js";

/** A temp file written and still open, on its way to its `.qf` name. */
export interface WrittenTemp {
  id: string;
  tmp: string;
  final: string;
  fd: number;
  renamed: boolean;
  /** a recycled file taken from the spare pool */
  reused: boolean;
}

/** Write one entry to its temp file in `dir` (not yet synced); the descriptor stays open for the fsync. */
export function writeTemp(
  dir: string,
  spares: SparePool | null,
  message: Buffer,
  meta: EntryMeta,
  opts: { notBefore?: number; id?: string },
): WrittenTemp {
  // an explicit time is kept exactly, so that re-running a crashed step rewrites the same name
  const time = opts.notBefore !== undefined ? exactTimePrefix(opts.notBefore) : timePrefix(Date.now());
  const bufs = encodeEntry(meta, message);
  const id = opts.id ?? entrySha1(message, (bufs[1] ?? Buffer.alloc(0)).toString("latin1"), time);
  const base = `${time}+${id}`;
  const tmp = path.join(dir, base + EXT_TMP);
  let fd: number | undefined;
  let reused = false;
  try {
    if (spares?.take(tmp)) {
      fd = openSync(tmp, "r+");
      // A spare is an inode of its own. After a crash on a filesystem that does not order its
      // metadata writes (ext4 without a journal), the spare's old name may have come back beside
      // the entry's new one: two names, one inode, which fsck counts as two links. Never write
      // into a file that is also something else.
      if (fstatSync(fd).nlink === 1) {
        reused = true;
        // Empty it before writing: commitEntries renames before it fsyncs, and a power loss in that
        // moment keeps the rename and the truncation (metadata) but can drop the new bytes. The name
        // must then hold nothing (an unacknowledged torn write, removed by readers), never the spare's
        // old entry, which would come back as a message already delivered.
        ftruncateSync(fd, 0);
      } else {
        closeSync(fd);
        fd = undefined;
        unlinkSync(tmp);
      }
    }
    // "w", not "wx": a temp file of the same name can only be a leftover of a crashed attempt
    fd ??= openSync(tmp, "w", 0o600);
    writeAllSync(fd, bufs);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw unavailable(`cannot write ${tmp}`, err);
  }
  return { id, tmp, final: path.join(dir, base + EXT_QUEUED), fd, renamed: false, reused };
}
