/**
 * Reading queues for operators (`queue list`, `queue show`, `status`): entry files are opened only far
 * enough to read their metadata, never taken, so inspecting a live queue disturbs no runner.
 */
import { open, opendir } from "node:fs/promises";
import path from "node:path";
import { decodeEntry } from "./entry.js";
import { parseName } from "./names.js";
import { QUEUE_NAMES, type EntryMeta } from "./types.js";

/** Entries an operator put aside (`queue hold`); no runner consumes it, `queue release` empties it. */
export const HOLD_QUEUE = "hold";

/** Every queue an operator can inspect: the runners' queues, shunt, bad, and hold. */
export const KNOWN_QUEUES: readonly string[] = [...QUEUE_NAMES, HOLD_QUEUE];

export interface EntrySummary {
  queue: string;
  id: string;
  name: string;
  state: "queued" | "in progress";
  /** ms epoch from the name: queued at, or due at for deferred entries */
  time: number;
  /** message size in bytes */
  size: number;
  meta: EntryMeta | null;
  /** why the metadata could not be read */
  error?: string;
}

const HEAD_RE = /^QRQ1 (\d+) (\d+)\n/;

/** Read an entry file's metadata without reading its message. */
export async function readSummary(dir: string, queue: string, name: string): Promise<EntrySummary | null> {
  const p = parseName(name);
  if (!p || p.ext === "tmp") return null;
  const base: EntrySummary = {
    queue,
    id: p.sha1,
    name,
    state: p.ext === "qf" ? "queued" : "in progress",
    time: p.time,
    size: 0,
    meta: null,
  };
  let fh;
  try {
    fh = await open(path.join(dir, name), "r");
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    const m = HEAD_RE.exec(head.subarray(0, bytesRead).toString("latin1"));
    if (!m) return { ...base, error: "not a qrunner entry" };
    const headLen = m[0].length;
    const metaLen = Number(m[1]);
    const msgLen = Number(m[2]);
    const buf = Buffer.alloc(headLen + metaLen + 1);
    await fh.read(buf, 0, buf.length, 0);
    const st = await fh.stat();
    if (st.size !== headLen + metaLen + 1 + msgLen) return { ...base, size: msgLen, error: "truncated" };
    // decodeEntry checks the metadata; give it a file whose message part is empty
    const fake = Buffer.concat([Buffer.from(`QRQ1 ${metaLen} 0\n`), buf.subarray(headLen)]);
    return { ...base, size: msgLen, meta: decodeEntry(name, fake).meta };
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") return null;
    return { ...base, error: err instanceof Error ? err.message : String(err) };
  } finally {
    await fh?.close();
  }
}

/** Entry file names of a queue (queued and in progress, not temp files), oldest first. */
export async function listNames(root: string, queue: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of await opendir(path.join(root, queue), { bufferSize: 1024 })) {
      const p = parseName(e.name);
      if (p && p.ext !== "tmp") names.push(e.name);
    }
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") return [];
    throw err;
  }
  // the names start with a fixed-width time, so string order is time order
  return names.sort();
}

/** How many metadata reads are in flight at once while walking a queue. */
const READ_AHEAD = 32;

/**
 * Every entry of a queue, oldest first, read a few at a time so that walking a queue of 100,000
 * entries holds only a handful of summaries in memory. Entries gone since the listing are skipped.
 */
export async function* eachSummary(
  root: string,
  queue: string,
  names?: readonly string[],
): AsyncGenerator<EntrySummary> {
  const all = names ?? (await listNames(root, queue));
  const dir = path.join(root, queue);
  for (let i = 0; i < all.length; i += READ_AHEAD) {
    const chunk = await Promise.all(all.slice(i, i + READ_AHEAD).map((n) => readSummary(dir, queue, n)));
    for (const s of chunk) if (s) yield s;
  }
}

/** Summaries of a queue's entries, oldest first (at most `limit`). */
export async function listQueue(root: string, queue: string, limit = Infinity): Promise<EntrySummary[]> {
  const names = await listNames(root, queue);
  const out: EntrySummary[] = [];
  for await (const s of eachSummary(root, queue, limit === Infinity ? names : names.slice(0, limit)))
    out.push(s);
  return out;
}

/** Find entries by id or unambiguous id prefix (at least 6 hex digits) across every known queue. */
export async function findEntries(
  root: string,
  idPrefix: string,
  queues: readonly string[] = KNOWN_QUEUES,
): Promise<EntrySummary[]> {
  const want = idPrefix.toLowerCase();
  if (!/^[0-9a-f]{6,40}$/.test(want)) return [];
  const found: EntrySummary[] = [];
  for (const q of queues) {
    let d;
    try {
      d = await opendir(path.join(root, q), { bufferSize: 1024 });
    } catch {
      continue;
    }
    for await (const e of d) {
      const p = parseName(e.name);
      if (p && p.ext !== "tmp" && p.sha1.startsWith(want)) {
        const s = await readSummary(path.join(root, q), q, e.name);
        if (s) found.push(s);
      }
    }
  }
  return found;
}

/** Does the queue hold at least one entry (queued or in progress)? Stops at the first one found. */
export async function hasEntries(root: string, queue: string): Promise<boolean> {
  let d;
  try {
    d = await opendir(path.join(root, queue), { bufferSize: 64 });
  } catch {
    return false;
  }
  try {
    for await (const e of d) {
      const p = parseName(e.name);
      if (p && p.ext !== "tmp") return true;
    }
  } finally {
    await d.close().catch(() => undefined);
  }
  return false;
}
