/**
 * The read side of an entry file: reading and decoding one, and moving one that cannot be read to
 * `bad`. The counterpart of write.ts; kept apart from switchboard.ts, whose part is which file is read
 * when (the renames that claim, finish and put back entries), so that the Switchboard is its state
 * machine and these are plain functions of a file.
 */
import { readFileSync } from "node:fs";
import { mkdir, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { CorruptEntryError } from "../util/errors.js";
import { decodeEntry } from "./entry.js";
import { parseName } from "./names.js";
import type { Entry } from "./types.js";

/** Read one entry file of `queue` as the entry named `name`; CorruptEntryError when it cannot be parsed. */
export async function readEntry(queue: string, file: string, name: string): Promise<Entry> {
  const p = parseName(path.basename(file));
  if (!p) throw new CorruptEntryError(file, "not an entry file name");
  // a small file, just written, in the page cache: read in place rather than in four thread-pool
  // round trips (open, fstat, read, close) as fs/promises' readFile does
  const data = readFileSync(file);
  const { meta, message } = decodeEntry(file, data);
  return { queue, id: p.sha1, name, time: p.time, meta, message };
}

/**
 * Move an unreadable file to `bad` (a sibling directory of the queue directory `dir`), logging why;
 * an empty one is removed.
 */
export async function moveToBad(
  dir: string,
  queue: string,
  file: string,
  base: string,
  reason: string,
  logger: Logger | undefined,
): Promise<void> {
  // An empty file can only be a write a crash cut between its rename and its fsync (every entry has
  // a header line, and none is acknowledged before its fsync): it holds nothing anyone was promised
  if ((await stat(file)).size === 0) {
    await unlink(file);
    logger?.warn(
      { queue, file: path.basename(file), reason },
      "empty entry file (a write cut by a crash) removed",
    );
    return;
  }
  const badDir = path.join(path.dirname(dir), "bad");
  await mkdir(badDir, { recursive: true, mode: 0o700 });
  const target = path.join(badDir, `${base}.${queue}.bad`);
  await rename(file, target);
  logger?.error({ queue, file: path.basename(file), moved: target, reason }, "unreadable entry moved to bad");
}
