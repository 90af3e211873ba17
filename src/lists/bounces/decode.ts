/**
 * Turning a MIME leaf into text: transfer encoding (base64, quoted-printable), charset, and HTML for
 * notices that come only as HTML. The decoding itself (quoted-printable, charsets, RFC 2047 words) is
 * ../header-text.ts, the one decoder the lists share. Lenient and bounded like the walk in ./mime.ts:
 * malformed input decodes to something, never to an exception.
 */
import { decodeCharset, decodeQuotedPrintable } from "../header-text.js";
import { header, type MimePart } from "./mime.js";

/** Decoded characters kept per text part. */
export const MAX_PART_TEXT = 256 * 1024;

/** Undo the Content-Transfer-Encoding; returns bytes. */
export function decodeTransfer(part: MimePart): Buffer {
  const cte = (header(part.headers, "content-transfer-encoding") ?? "").trim().toLowerCase();
  const body = part.body.length > MAX_PART_TEXT * 2 ? part.body.slice(0, MAX_PART_TEXT * 2) : part.body;
  if (cte === "base64") return Buffer.from(body.replace(/[^A-Za-z0-9+/]/g, ""), "base64");
  if (cte === "quoted-printable") return decodeQuotedPrintable(body);
  return Buffer.from(body, "latin1");
}

/** A leaf's text: transfer-decoded, charset-decoded, line ends normalized, capped at MAX_PART_TEXT. */
export function partText(part: MimePart): string {
  const text = decodeCharset(decodeTransfer(part), part.params["charset"]).replace(/\r\n?/g, "\n");
  return text.length > MAX_PART_TEXT ? text.slice(0, MAX_PART_TEXT) : text;
}

/**
 * Good-enough HTML to text for notices that come only as HTML: tags out (style and script with their
 * content), block ends to line breaks, a few entities. A single forward pass, linear on any input.
 */
export function htmlToText(html: string): string {
  const lower = html.toLowerCase();
  let out = "";
  let pos = 0;
  while (pos < html.length) {
    const lt = html.indexOf("<", pos);
    if (lt < 0) {
      out += html.slice(pos);
      break;
    }
    out += html.slice(pos, lt);
    const gt = html.indexOf(">", lt);
    if (gt < 0) break; // an unclosed tag: the rest is markup
    const tag = /^<\s*(\/?)\s*([a-z0-9]*)/i.exec(html.slice(lt, Math.min(gt, lt + 40)));
    const name = (tag?.[2] ?? "").toLowerCase();
    pos = gt + 1;
    if (tag?.[1] === "" && (name === "style" || name === "script")) {
      const close = lower.indexOf(`</${name}`, pos);
      pos = close < 0 ? html.length : close;
    } else if (name === "br" || (tag?.[1] === "/" && /^(p|div|tr|li|h\d|table)$/.test(name))) {
      out += "\n";
    }
  }
  return out
    .replace(/&nbsp;/gi, " ")
    .replace(/&lt;/gi, "<")
    .replace(/&gt;/gi, ">")
    .replace(/&quot;/gi, '"')
    .replace(/&#(\d{1,6});/g, (_m, d: string) => safeCodePoint(Number(d)))
    .replace(/&amp;/gi, "&");
}

function safeCodePoint(n: number): string {
  return n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : " ";
}
