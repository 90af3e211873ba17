/**
 * Header scanning on raw message bytes. The post path must stay cheap (one post fans out to every
 * member), so nothing here builds a MIME tree: we find the header block with byte searches, read
 * fields by offset, and never look past the empty line that ends the header.
 *
 * What inject checks of its input is in message-check.ts, the decoding of header text in header-text.ts.
 */

import { trimOf } from "../util/trim.js";

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

// LF and COLON are exported for message-check.ts, which walks header lines the same way
export const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
export const COLON = 0x3a;

interface Bounds {
  headerEnd: number;
  bodyStart: number;
}

/** Find the empty line that ends the header, looking only at the first `limit` bytes. */
export function locate(raw: Buffer, limit: number): Bounds | "none" | "too-long" {
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
export function nameEnd(h: Buffer, start: number, colon: number): number {
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

/**
 * The value of a field: unfolded (line breaks removed), outer whitespace trimmed, bytes as latin1.
 * Linear in the field's length: a field can be most of a 1 MiB header of folded blank lines.
 */
function fieldValue(h: Buffer, colon: number, end: number): string {
  const s = h.toString("latin1", colon + 1, end);
  return trimOf(s.replace(/\r?\n/g, ""), " \t", " \t\r");
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

/** The Message-ID (`<local@domain>`, brackets included), or undefined. Reads the header only. */
export function messageId(raw: Buffer): string | undefined {
  const v = getHeader(raw, "message-id");
  if (v === undefined) return undefined;
  const m = /<[^<>\s]+>/.exec(v);
  if (m) return m[0];
  return v !== "" && !/\s/.test(v) ? v : undefined;
}
