/**
 * Header scanning on raw message bytes. The post path must stay cheap (one post fans out to every
 * member), so nothing here builds a MIME tree: we find the header block with byte searches, read
 * fields by offset, and never look past the empty line that ends the header.
 */

export type Eol = "\r\n" | "\n";

export interface SplitMessage {
  /** the header block: every header line with its line ending, without the empty line */
  header: Buffer;
  /** everything after the empty line (empty when there is none) */
  body: Buffer;
  /** the line ending of the first header line: the message's own style */
  eol: Eol;
  /** offset where the header block ends (the empty line starts here, if there is one) */
  headerEnd: number;
  /** offset where the body starts */
  bodyStart: number;
}

export interface HeaderField {
  /** the field name as written (compare case-insensitively) */
  name: string;
  /** the value unfolded and trimmed, one char per byte (latin1): `Buffer.from(value, "latin1")` gives the bytes back */
  value: string;
  /** offset of the field's first byte in the header block */
  start: number;
  /** offset just past the field's last line ending */
  end: number;
}

/** A header block over this is not a message we take (inject exits 65). */
export const MAX_HEADER_BYTES = 1024 * 1024;
/**
 * Longest header line we take. RFC 5322 says 998; real mail sometimes carries longer References or
 * DKIM lines, and bouncing those at the MTA loses mail, so we allow generous slack.
 */
export const MAX_HEADER_LINE = 4096;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

interface Bounds {
  headerEnd: number;
  bodyStart: number;
}

/** Find the empty line that ends the header, looking only at the first `limit` bytes. */
function locate(raw: Buffer, limit: number): Bounds | "none" | "too-long" {
  if (raw.length === 0 || raw[0] === LF || (raw[0] === CR && raw[1] === LF)) return "none";
  const view = raw.length > limit ? raw.subarray(0, limit) : raw;
  let pos = 0;
  for (;;) {
    const nl = view.indexOf(LF, pos);
    if (nl === -1) break;
    const next = nl + 1;
    if (raw[next] === LF) return { headerEnd: next, bodyStart: next + 1 };
    if (raw[next] === CR && raw[next + 1] === LF) return { headerEnd: next, bodyStart: next + 2 };
    pos = next;
  }
  // no empty line: the whole message is header, unless we stopped at the limit
  return raw.length > limit ? "too-long" : { headerEnd: raw.length, bodyStart: raw.length };
}

function eolOf(raw: Buffer): Eol {
  const nl = raw.indexOf(LF);
  return nl > 0 && raw[nl - 1] === CR ? "\r\n" : "\n";
}

/** Split at the first empty line. null when there is no header block at all (empty, or starts with an empty line). */
export function splitHeader(raw: Buffer): SplitMessage | null {
  const b = locate(raw, Number.POSITIVE_INFINITY);
  if (typeof b === "string") return null;
  return {
    header: raw.subarray(0, b.headerEnd),
    body: raw.subarray(b.bodyStart),
    eol: eolOf(raw.subarray(0, b.headerEnd)),
    headerEnd: b.headerEnd,
    bodyStart: b.bodyStart,
  };
}

/** A field name: printable US-ASCII except colon (RFC 5322 ftext); obsolete WSP before the colon is allowed. */
function nameEnd(h: Buffer, start: number, colon: number): number {
  let end = colon;
  while (end > start && (h[end - 1] === SP || h[end - 1] === HT)) end--;
  if (end === start) return -1;
  for (let i = start; i < end; i++) {
    const c = h[i] as number;
    if (c < 33 || c > 126) return -1;
  }
  return end;
}

/**
 * Walk the fields of a header block. `visit` gets the field's offsets and returns true to stop.
 * Lines that are neither a field nor a continuation are skipped (they stay in the bytes, untouched).
 */
function scanFields(
  h: Buffer,
  visit: (start: number, nameStop: number, colon: number, end: number) => boolean,
): void {
  let cur: { start: number; nameStop: number; colon: number } | null = null;
  let end = 0;
  let pos = 0;
  while (pos < h.length) {
    const nl = h.indexOf(LF, pos);
    const lineEnd = nl === -1 ? h.length : nl + 1;
    const first = h[pos];
    if (first === SP || first === HT) {
      if (cur) end = lineEnd;
    } else {
      if (cur && visit(cur.start, cur.nameStop, cur.colon, end)) return;
      cur = null;
      const colon = h.subarray(pos, lineEnd).indexOf(COLON);
      if (colon !== -1) {
        const stop = nameEnd(h, pos, pos + colon);
        if (stop !== -1) {
          cur = { start: pos, nameStop: stop, colon: pos + colon };
          end = lineEnd;
        }
      }
    }
    pos = lineEnd;
  }
  if (cur) visit(cur.start, cur.nameStop, cur.colon, end);
}

/** The value of a field: unfolded (line breaks removed), outer whitespace trimmed, bytes as latin1. */
function fieldValue(h: Buffer, colon: number, end: number): string {
  const s = h.toString("latin1", colon + 1, end);
  return s.replace(/\r?\n/g, "").replace(/^[ \t]+|[ \t\r]+$/g, "");
}

/** Every well-formed field of a header block, in order. */
export function headerFields(header: Buffer): HeaderField[] {
  const out: HeaderField[] = [];
  scanFields(header, (start, nameStop, colon, end) => {
    out.push({
      name: header.toString("latin1", start, nameStop),
      value: fieldValue(header, colon, end),
      start,
      end,
    });
    return false;
  });
  return out;
}

function sameName(h: Buffer, start: number, stop: number, lower: string): boolean {
  if (stop - start !== lower.length) return false;
  return h.toString("latin1", start, stop).toLowerCase() === lower;
}

function headerBlock(raw: Buffer): Buffer | null {
  const b = locate(raw, Number.POSITIVE_INFINITY);
  return typeof b === "string" ? null : raw.subarray(0, b.headerEnd);
}

/** The first value of a field (case-insensitive name), or undefined. Scans the header block only. */
export function getHeader(raw: Buffer, name: string): string | undefined {
  const h = headerBlock(raw);
  if (!h) return undefined;
  const lower = name.toLowerCase();
  let found: string | undefined;
  scanFields(h, (start, nameStop, colon, end) => {
    if (!sameName(h, start, nameStop, lower)) return false;
    found = fieldValue(h, colon, end);
    return true;
  });
  return found;
}

/** Every value of a field, in order. */
export function getHeaders(raw: Buffer, name: string): string[] {
  const h = headerBlock(raw);
  if (!h) return [];
  const lower = name.toLowerCase();
  const out: string[] = [];
  scanFields(h, (start, nameStop, colon, end) => {
    if (sameName(h, start, nameStop, lower)) out.push(fieldValue(h, colon, end));
    return false;
  });
  return out;
}

/** One scan of the header for callers that look up several fields (the checks). */
export class MessageHeader {
  readonly fields: readonly HeaderField[];
  private readonly byName = new Map<string, string[]>();
  constructor(fields: readonly HeaderField[]) {
    this.fields = fields;
    for (const f of fields) {
      const key = f.name.toLowerCase();
      const list = this.byName.get(key);
      if (list) list.push(f.value);
      else this.byName.set(key, [f.value]);
    }
  }
  static of(raw: Buffer): MessageHeader {
    const h = headerBlock(raw);
    return new MessageHeader(h ? headerFields(h) : []);
  }
  get(name: string): string | undefined {
    return this.byName.get(name.toLowerCase())?.[0];
  }
  getAll(name: string): readonly string[] {
    return this.byName.get(name.toLowerCase()) ?? [];
  }
  has(name: string): boolean {
    return this.byName.has(name.toLowerCase());
  }
}

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
        const what = h.toString("latin1", 0, Math.min(lineEnd, 40)).replace(/[\r\n]+$/, "");
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

/** The Message-ID (`<local@domain>`, brackets included), or undefined. Reads the header only. */
export function messageId(raw: Buffer): string | undefined {
  const v = getHeader(raw, "message-id");
  if (v === undefined) return undefined;
  const m = /<[^<>\s]+>/.exec(v);
  if (m) return m[0];
  return v !== "" && !/\s/.test(v) ? v : undefined;
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

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

function wordBytes(enc: string, text: string): Buffer {
  if (enc === "B" || enc === "b") return Buffer.from(text, "base64");
  const s = text
    .replace(/_/g, " ")
    .replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(s, "latin1");
}

function decodeBytes(bytes: Buffer, charset: string): string {
  const cs = charset.replace(/\*.*$/, "").toLowerCase();
  if (cs === "us-ascii" || cs === "iso-8859-1" || cs === "latin1")
    return bytes.toString("latin1", 0, bytes.length);
  try {
    return new TextDecoder(cs).decode(bytes);
  } catch {
    return bytes.toString("latin1", 0, bytes.length); // unknown charset: keep the bytes readable rather than fail
  }
}

/** Undo 8-bit header text in latin1 form: valid UTF-8 reads as UTF-8 (RFC 6532), anything else as latin1. */
function rawText(latin1: string): string {
  if (!/[\x80-\xff]/.test(latin1)) return latin1;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(latin1, "latin1"));
  } catch {
    return latin1;
  }
}

/**
 * Decode the RFC 2047 encoded-words of an unstructured value (as given by getHeader, latin1).
 * Whitespace between adjacent encoded-words is dropped, and adjacent words in one charset are joined
 * before decoding, since encoders split multi-byte characters across words.
 */
export function decodeHeaderText(value: string): string {
  let out = "";
  let last = 0;
  let pending: { charset: string; bytes: Buffer[] } | null = null;
  const flush = (): void => {
    if (pending) out += decodeBytes(Buffer.concat(pending.bytes), pending.charset);
    pending = null;
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const between = value.slice(last, m.index);
    const charset = (m[1] ?? "").toLowerCase();
    const bytes = wordBytes(m[2] ?? "Q", m[3] ?? "");
    if (pending && /^[ \t]*$/.test(between)) {
      if (pending.charset === charset) pending.bytes.push(bytes);
      else {
        flush();
        pending = { charset, bytes: [bytes] };
      }
    } else {
      flush();
      out += rawText(between);
      pending = { charset, bytes: [bytes] };
    }
    last = m.index + m[0].length;
  }
  flush();
  return out + rawText(value.slice(last));
}
