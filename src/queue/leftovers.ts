/**
 * Files that crashed writers and commands leave in a queue directory: temp files never renamed, and
 * `.wip` files of queues no runner serves. Plain functions of a directory and a slice; the
 * Switchboard calls them (Switchboard.recover, recoverAbandoned, removeStaleTemps).
 */
import { rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { EXT_QUEUED, parseName, type ParsedName } from "./names.js";
import { scanSlice } from "./scanner.js";
import type { Slice } from "./slice.js";

/** How long a `.tmp` file may sit before it counts as left by a crashed writer. */
const STALE_TMP_MS = 10 * 60_000;

/** The sha1s of the slice's files with extension `ext`. */
export async function idsInSlice(dir: string, slice: Slice, ext: ParsedName["ext"]): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const name of (await scanSlice(dir, slice, ext, Number.MAX_SAFE_INTEGER)).names) {
    const p = parseName(name);
    if (p) ids.add(p.sha1);
  }
  return ids;
}

/** Remove the slice's temp files older than STALE_TMP_MS. */
export async function removeStaleTemps(dir: string, slice: Slice): Promise<void> {
  const tmps = (await scanSlice(dir, slice, "tmp", Number.MAX_SAFE_INTEGER)).names;
  const now = Date.now();
  for (const name of tmps) {
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => null);
    // ctime too: a recycled file renamed into place keeps its old mtime until it is written
    if (st && now - Math.max(st.mtimeMs, st.ctimeMs) > STALE_TMP_MS)
      await unlink(file).catch(() => undefined);
  }
}

/**
 * Put back (`.wip` → `.qf`) the slice's in-progress files that have been so for `minAgeMs` (their
 * ctime, set by the rename): younger ones may belong to a command still running. Returns how many.
 */
export async function putBackAbandoned(dir: string, slice: Slice, minAgeMs: number): Promise<number> {
  const now = Date.now();
  let n = 0;
  for (const name of (await scanSlice(dir, slice, "wip", Number.MAX_SAFE_INTEGER)).names) {
    const p = parseName(name);
    const st = p ? await stat(path.join(dir, name)).catch(() => null) : null;
    if (!p || !st || now - st.ctimeMs < minAgeMs) continue;
    await rename(path.join(dir, name), path.join(dir, p.base + EXT_QUEUED)).then(
      () => n++,
      () => undefined,
    );
  }
  return n;
}
