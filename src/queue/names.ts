/**
 * Entry file names: `<seconds>.<microseconds>+<sha1>.<ext>`. The time prefix orders entries (oldest
 * first, by plain string comparison, since seconds have 10 digits until the year 2286); for deferred
 * entries it is the time they fall due. The sha1 places the entry in a slice.
 */
import { createHash, randomBytes } from "node:crypto";

export const EXT_QUEUED = ".qf";
export const EXT_WIP = ".wip";
export const EXT_TMP = ".tmp";

const NAME_RE = /^(\d{10})\.(\d{6})\+([0-9a-f]{40})\.(qf|wip|tmp)$/;

export interface ParsedName {
  /** `<time>+<sha1>` without the extension */
  base: string;
  /** ms since the epoch */
  time: number;
  sha1: string;
  ext: "qf" | "wip" | "tmp";
}

export function parseName(name: string): ParsedName | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  return {
    base: name.slice(0, name.length - (m[4] ?? "").length - 1),
    time: Number(m[1]) * 1000 + Number(m[2]) / 1000,
    sha1: m[3] ?? "",
    ext: m[4] as ParsedName["ext"],
  };
}

/**
 * The sha1 of an entry file name with extension `ext` ("qf", "wip" or "tmp"), or null when the name is
 * not one: what parseName checks, without a regular expression or an object per name, for listing
 * passes over a million names.
 */
export function sha1OfName(name: string, ext: ParsedName["ext"]): string | null {
  // <10 digits>.<6 digits>+<40 hex>.<ext>
  if (name.length !== 59 + ext.length || name.charCodeAt(58) !== 0x2e || !name.endsWith(ext)) return null;
  if (name.charCodeAt(10) !== 0x2e || name.charCodeAt(17) !== 0x2b) return null;
  for (let i = 0; i < 58; i++) {
    if (i === 10 || i === 17) continue;
    const c = name.charCodeAt(i);
    const digit = c >= 0x30 && c <= 0x39;
    if (i < 17 ? !digit : !(digit || (c >= 0x61 && c <= 0x66))) return null;
  }
  return name.slice(18, 58);
}

/** A monotonic microsecond stamp for "now": two entries queued in the same millisecond keep their order. */
let lastMicros = 0;
export function timePrefix(ms: number): string {
  let micros = Math.floor(ms * 1000);
  if (micros <= lastMicros) micros = lastMicros + 1;
  lastMicros = micros;
  return formatMicros(micros);
}

/** The stamp of exactly this time (ms, fractions kept to the microsecond). */
export function exactTimePrefix(ms: number): string {
  return formatMicros(Math.floor(ms * 1000));
}

function formatMicros(micros: number): string {
  const secs = Math.floor(micros / 1_000_000);
  const frac = micros % 1_000_000;
  return `${String(secs).padStart(10, "0")}.${String(frac).padStart(6, "0")}`;
}

/** The sha1 covers the content, metadata, time and a random nonce: uniform, and never equal for two entries. */
export function entrySha1(message: Buffer, metaJson: string, time: string): string {
  return createHash("sha1")
    .update(message)
    .update(metaJson)
    .update(time)
    .update(randomBytes(16))
    .digest("hex");
}
