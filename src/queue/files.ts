/** Small file helpers of the Switchboard: complete writes, errno tests, typed "queue unavailable" errors. */
import type { FileHandle } from "node:fs/promises";
import { QueueUnavailableError, describeError } from "../util/errors.js";
import type { EntryMeta, NewEntryMeta } from "./types.js";

/**
 * Write every byte: a write on a nearly full filesystem may be short without an error (the next one
 * then fails with ENOSPC), so a short write must never pass for a complete entry.
 */
export async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  let { bytesWritten } = await fh.writev(bufs);
  if (bytesWritten === total) return;
  const all = Buffer.concat(bufs);
  while (bytesWritten < total) {
    const r = await fh.write(all, bytesWritten, total - bytesWritten, bytesWritten);
    if (r.bytesWritten === 0)
      throw new QueueUnavailableError(`short write: ${bytesWritten} of ${total} bytes`);
    bytesWritten += r.bytesWritten;
  }
}

export function fullMeta(meta: NewEntryMeta, now: number): EntryMeta {
  return {
    ...meta,
    version: 1,
    received: meta.received ?? now,
    attempts: meta.attempts ?? 0,
    failures: meta.failures ?? [],
    recoveries: meta.recoveries ?? 0,
  };
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

export function unavailable(what: string, err: unknown): QueueUnavailableError {
  return new QueueUnavailableError(`${what}: ${describeError(err)}`, { cause: err });
}
