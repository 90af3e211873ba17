/**
 * Mail's text encodings, decoded: the one decoder for header and body text, shared by the lists
 * (subjects, commands) and the bounce reader (notices, DSN parts).
 *
 * - RFC 2047 encoded-words in a header value, and raw 8-bit header text taken as UTF-8 when it is
 *   (RFC 6532): `decodeHeaderText`. Separate from the byte scanning in message.ts: it works on a
 *   field's value once found, and only the callers that show or match text need it.
 * - Quoted-printable bodies (RFC 2045): `decodeQuotedPrintable`, libqp's decoder (linear: it strips
 *   trailing blanks without the quadratic `/[\t ]+$/gm`).
 * - Bytes in a declared charset: `decodeCharset`, TextDecoder (one per charset), latin1 when the
 *   label is unknown, so ASCII survives either way and nothing throws.
 *
 * Every step is a single pass or a regex without nested quantifiers: linear on hostile input.
 */
import { TextDecoder } from "node:util";
import { decode as libqpDecode } from "libqp";

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * The RFC 2047 "Q" encoding: `=XX` a byte, `_` a space, anything else itself. Not libqp: a Q word
 * has no soft line breaks, and its trailing `_` is a space that a body decoder would strip.
 */
function qWordBytes(text: string): Buffer {
  const out = Buffer.alloc(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3d /* = */ && i + 2 < text.length) {
      const hi = hexValue(text.charCodeAt(i + 1));
      const lo = hexValue(text.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    out[n++] = c === 0x5f /* _ */ ? 0x20 : c & 0xff;
  }
  return out.subarray(0, n);
}

function wordBytes(enc: string, text: string): Buffer {
  return enc === "B" || enc === "b" ? Buffer.from(text, "base64") : qWordBytes(text);
}

/** Undo a quoted-printable transfer encoding (soft line breaks, `=XX`); a latin1 string in, bytes out. */
export function decodeQuotedPrintable(s: string): Buffer {
  return libqpDecode(s);
}

/**
 * One decoder per charset, made on first use: a Subject of thousands of words would otherwise build
 * one per word. Only labels TextDecoder knows get here (an unknown one throws first), so the cache
 * stays as small as the list of encodings.
 */
const decoders = new Map<string, TextDecoder>();
function decoderFor(charset: string): TextDecoder {
  let d = decoders.get(charset);
  if (!d) {
    d = new TextDecoder(charset);
    decoders.set(charset, d);
  }
  return d;
}

/**
 * Bytes to text in the given charset (utf-8 when none is given); an RFC 2231 language suffix
 * (`utf-8*en`) is ignored, and an unknown charset falls back to latin1 rather than failing.
 */
export function decodeCharset(bytes: Buffer, charset: string | undefined): string {
  const label = (charset ?? "").trim();
  // indexOf, since /\*.*$/ is quadratic on a run of stars
  const star = label.indexOf("*");
  const cs = (star === -1 ? label : label.slice(0, star)).toLowerCase() || "utf-8";
  if (cs === "us-ascii" || cs === "iso-8859-1" || cs === "latin1")
    return bytes.toString("latin1", 0, bytes.length);
  try {
    return decoderFor(cs).decode(bytes);
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
 * Whitespace between adjacent encoded-words is dropped (folding included), and adjacent words in one
 * charset are joined before decoding, since encoders split multi-byte characters across words.
 * Malformed words stay as written.
 */
export function decodeHeaderText(value: string): string {
  let out = "";
  let last = 0;
  let pending: { charset: string; bytes: Buffer[] } | null = null;
  const flush = (): void => {
    if (pending) out += decodeCharset(Buffer.concat(pending.bytes), pending.charset);
    pending = null;
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const between = value.slice(last, m.index);
    const charset = (m[1] ?? "").toLowerCase();
    const bytes = wordBytes(m[2] ?? "Q", m[3] ?? "");
    if (pending && /^\s*$/.test(between)) {
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
