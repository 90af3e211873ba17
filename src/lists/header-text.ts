/**
 * Header text for reading: RFC 2047 encoded-words decoded, raw 8-bit text taken as UTF-8 when it is
 * (RFC 6532). Separate from the byte scanning in message.ts: it works on a field's value once found,
 * and only the callers that show or match text (subjects, commands) need it.
 */
import { TextDecoder } from "node:util";

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

function wordBytes(enc: string, text: string): Buffer {
  if (enc === "B" || enc === "b") return Buffer.from(text, "base64");
  const s = text
    .replace(/_/g, " ")
    .replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(s, "latin1");
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

function decodeBytes(bytes: Buffer, charset: string): string {
  // RFC 2231 language suffix (`utf-8*en`); indexOf, since /\*.*$/ is quadratic on a run of stars
  const star = charset.indexOf("*");
  const cs = (star === -1 ? charset : charset.slice(0, star)).toLowerCase();
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
