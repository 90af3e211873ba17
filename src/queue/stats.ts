/** Depth and age of a whole queue, for status and metrics: one pass over the directory, no file opened. */
import { opendir } from "node:fs/promises";
import path from "node:path";
import { isErrno } from "./files.js";
import { parseName } from "./names.js";

export interface QueueStats {
  /** entries queued (.qf) */
  depth: number;
  /** entries being handled (.wip) */
  inProgress: number;
  /** ms epoch of the oldest queued or in-progress entry; null when empty */
  oldest: number | null;
}

/** Depth, in-progress count and oldest entry of a whole queue (all slices). */
export async function queueStats(root: string, queue: string): Promise<QueueStats> {
  const stats: QueueStats = { depth: 0, inProgress: 0, oldest: null };
  let d;
  try {
    d = await opendir(path.join(root, queue), { bufferSize: 1024 });
  } catch (err) {
    if (isErrno(err, "ENOENT")) return stats;
    throw err;
  }
  for await (const e of d) {
    const p = parseName(e.name);
    if (!p || p.ext === "tmp") continue;
    if (p.ext === "qf") stats.depth++;
    else stats.inProgress++;
    if (stats.oldest === null || p.time < stats.oldest) stats.oldest = p.time;
  }
  return stats;
}
