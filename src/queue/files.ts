/** Small file helpers of the Switchboard: complete writes, errno tests, typed "queue unavailable" errors. */
import { writeSync, writevSync } from "node:fs";
import { QueueUnavailableError, describeError } from "../util/errors.js";
import type { EntryMeta, NewEntryMeta } from "./types.js";

/**
 * Write every byte: a write on a nearly full filesystem may be short without an error (the next one
 * then fails with ENOSPC), so a short write must never pass for a complete entry. Synchronous: a
 * small write into the page cache costs a few microseconds, a thread-pool round trip several times that.
 */
export function writeAllSync(fd: number, bufs: Buffer[]): number {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  let written = writevSync(fd, bufs);
  if (written === total) return total;
  const all = Buffer.concat(bufs);
  while (written < total) {
    const n = writeSync(fd, all, written, total - written, written);
    if (n === 0) throw new QueueUnavailableError(`short write: ${written} of ${total} bytes`);
    written += n;
  }
  return total;
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
