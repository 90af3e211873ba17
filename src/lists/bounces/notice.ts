/**
 * The parts of a notice the detector reads around the recipients (./detect.ts): its own text lines
 * (text/plain, else HTML as text; never the returned message), the head of that text for reasons,
 * and the addresses that are the notice's or the sender's own, never a failed recipient. Bounded:
 * MAX_LINES lines of MAX_LINE characters, 4 KiB per header value, 200 returned header lines.
 */
import { cleanAddress } from "./address.js";
import { htmlToText, partText } from "./decode.js";
import { headerAll, parseHeaderBlock, type HeaderField, type MimePart } from "./mime.js";

const MAX_LINES = 20_000;
const MAX_LINE = 1000;

/** The first `max` characters of the lines joined by newlines, without joining the rest. */
export function headText(lines: readonly string[], max: number): string {
  const out: string[] = [];
  let n = 0;
  for (const l of lines) {
    if (n >= max) break;
    out.push(l.length > max - n ? l.slice(0, max - n) : l);
    n += l.length + 1;
  }
  return out.join("\n");
}

/** Addresses in header fields, each field's value split on commas, canonical. */
export function headerAddresses(fields: readonly HeaderField[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of names) {
    for (const value of headerAll(fields, name)) {
      for (const piece of value.slice(0, 4096).split(",")) {
        const lt = piece.indexOf("<");
        const gt = piece.indexOf(">", lt + 1);
        const a = cleanAddress(lt >= 0 && gt > lt ? piece.slice(lt + 1, gt) : piece);
        if (a !== undefined) out.push(a);
      }
    }
  }
  return out;
}

/** The headers of the returned message: a message/rfc822 or text/rfc822-headers part, else inline after the notice. */
export function returnedFields(
  parts: readonly MimePart[],
  lines: readonly string[],
  regionEnd: number,
): HeaderField[] {
  const part = parts.find((p) => p.type === "message/rfc822" || p.type === "text/rfc822-headers");
  if (part !== undefined) return parseHeaderBlock(partText(part).slice(0, 64 * 1024)).fields;
  let i = regionEnd;
  // skip the marker line and blank lines up to the header block
  while (i < lines.length && i < regionEnd + 5 && !/^[A-Za-z][\w-]*:/.test(lines[i] as string)) i++;
  return parseHeaderBlock(lines.slice(i, i + 200).join("\n")).fields;
}

/** The notice's own addresses and the sender's: never a failed recipient. */
export function ownAddresses(h: readonly HeaderField[], returned: readonly HeaderField[]): Set<string> {
  const own = [
    ...headerAddresses(h, ["from", "to", "cc", "reply-to", "sender", "return-path", "errors-to"]),
    ...headerAddresses(returned, ["from", "sender", "reply-to", "return-path"]),
  ];
  return new Set(own.map((a) => a.toLowerCase()));
}

/** The notice's text: its text/plain parts (HTML only when there is no plain text), never the returned message. */
export function noticeLines(parts: readonly MimePart[]): string[] {
  const plain = parts.filter((p) => p.type === "text/plain");
  const texts =
    plain.length > 0
      ? plain.map(partText)
      : parts.filter((p) => p.type === "text/html").map((p) => htmlToText(partText(p)));
  const lines: string[] = [];
  for (const t of texts) {
    for (const line of t.split("\n")) {
      if (lines.length >= MAX_LINES) return lines;
      lines.push(line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line);
    }
    lines.push("");
  }
  return lines;
}
