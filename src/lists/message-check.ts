/**
 * What `qrunner inject` checks of its input before taking it: is it an RFC 5322 message at all
 * (checkMessage, with the header limits), and did an MTA pipe put an mbox From_ line before it
 * (stripFromLine). Separate from the field reading in message.ts, which takes the message as given.
 */
import { trimEndOf } from "../util/trim.js";
import { COLON, LF, locate, nameEnd } from "./message.js";

/** A header block over this is not a message we take (inject exits 65). */
export const MAX_HEADER_BYTES = 1024 * 1024;
/**
 * Longest header line we take. RFC 5322 says 998; real mail sometimes carries longer References or
 * DKIM lines, and bouncing those at the MTA loses mail, so we allow generous slack.
 */
export const MAX_HEADER_LINE = 4096;

export type Plausibility = { ok: true } | { ok: false; reason: string };

/**
 * Is this an RFC 5322 message we can take? The first line must be a well-formed `Name: value`
 * field, the header block under MAX_HEADER_BYTES with no NUL and no line over MAX_HEADER_LINE.
 * Only the header block is read; the body may hold anything (8-bit, NUL, very long lines).
 */
export function checkMessage(raw: Buffer): Plausibility {
  if (raw.length === 0) return { ok: false, reason: "empty input" };
  const b = locate(raw, MAX_HEADER_BYTES + 2);
  if (b === "none") return { ok: false, reason: "no header: the input starts with an empty line" };
  if (b === "too-long") return { ok: false, reason: `header block is over ${MAX_HEADER_BYTES} bytes` };
  const h = raw.subarray(0, b.headerEnd);
  if (h.indexOf(0) !== -1) return { ok: false, reason: "NUL byte in the header" };
  let pos = 0;
  let line = 0;
  while (pos < h.length) {
    const nl = h.indexOf(LF, pos);
    const lineEnd = nl === -1 ? h.length : nl + 1;
    if (lineEnd - pos > MAX_HEADER_LINE + 2)
      return { ok: false, reason: `header line ${line + 1} is over ${MAX_HEADER_LINE} bytes` };
    if (line === 0) {
      const colon = h.subarray(0, lineEnd).indexOf(COLON);
      if (colon === -1 || nameEnd(h, 0, colon) === -1) {
        const what = trimEndOf(h.toString("latin1", 0, Math.min(lineEnd, 40)), "\r\n");
        const hint = what.startsWith("From ") ? " (an mbox From_ line: strip it before injecting)" : "";
        return { ok: false, reason: `first line is not a header field: ${JSON.stringify(what)}${hint}` };
      }
    }
    pos = lineEnd;
    line++;
  }
  return { ok: true };
}

/** `checkMessage(raw).ok`: what `inject` uses to exit 65. */
export function isPlausibleMessage(raw: Buffer): boolean {
  return checkMessage(raw).ok;
}

/**
 * Some MTA pipes (Exim's pipe transport, Postfix's `pipe` with flag F) put an mbox `From sender date`
 * line before the message. Returns the message without it, and the sender it named.
 */
export function stripFromLine(raw: Buffer): { raw: Buffer; sender?: string } {
  if (raw.length < 5 || raw.toString("latin1", 0, 5) !== "From ") return { raw };
  const nl = raw.indexOf(LF);
  if (nl === -1) return { raw };
  const sender = /^From (\S+)/.exec(raw.toString("latin1", 0, nl))?.[1];
  return sender === undefined ? { raw: raw.subarray(nl + 1) } : { raw: raw.subarray(nl + 1), sender };
}
