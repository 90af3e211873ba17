/**
 * List decoration of a post (RFC 2369 List-* fields, RFC 2919 List-Id, the subject prefix), done on
 * the raw bytes: every byte we do not add or change is copied through untouched, so 8-bit bodies,
 * signatures over the body and the message's own line endings survive.
 */
import { QrunnerError } from "../util/errors.js";
import type { ListConfig } from "./schema.js";
import { decodeHeaderText } from "./header-text.js";
import { headerFields, splitHeader, type Eol } from "./message.js";
import {
  bouncesAddress,
  joinAddress,
  leaveAddress,
  ownerAddress,
  requestAddress,
  type ListAddressParts,
} from "./addresses.js";

/** A header input (address, subject, token, URL) that would break out of its header line. */
export class HeaderInjectionError extends QrunnerError {
  readonly field: string;
  constructor(field: string, value: string) {
    super(
      "EHEADER_INJECTION",
      `refusing to write ${field}: the value holds a line break, NUL or other character that cannot go in a header: ${JSON.stringify(value.slice(0, 80))}`,
    );
    this.field = field;
  }
}

/** Throw HeaderInjectionError when `value` holds CR, LF or NUL; return it otherwise. */
export function assertHeaderSafe(field: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new HeaderInjectionError(field, value);
  return value;
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Text as RFC 2047 B encoded-words (UTF-8), each at most 75 characters, split between characters
 * so that no word holds half of one. Words are separated by a space, which readers drop.
 */
export function encodeWords(text: string): string {
  const words: string[] = [];
  let chunk = "";
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    // 45 bytes -> 60 base64 chars + 12 for "=?UTF-8?B?" and "?=" = 72 <= 75
    if (bytes + n > 45) {
      words.push(chunk);
      chunk = "";
      bytes = 0;
    }
    chunk += ch;
    bytes += n;
  }
  if (chunk !== "") words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, "utf8").toString("base64")}?=`).join(" ");
}

/** Unstructured text (a Subject): as is when printable ASCII, else encoded-words. */
export function encodeHeaderText(field: string, text: string): string {
  assertHeaderSafe(field, text);
  return PRINTABLE_ASCII.test(text) && !/=\?/.test(text) ? text : encodeWords(text);
}

/** A display-name phrase: atoms as is, other ASCII as a quoted-string, non-ASCII as encoded-words. */
export function formatPhrase(field: string, text: string): string {
  assertHeaderSafe(field, text);
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$/.test(text) && !/=\?/.test(text)) return text.trim();
  if (PRINTABLE_ASCII.test(text)) return `"${text.replace(/["\\]/g, "\\$&")}"`;
  return encodeWords(text);
}

/** The list's role addresses (see addresses.ts for how recipients are routed to them). */
export function listAddresses(list: ListAddressParts): {
  request: string;
  join: string;
  leave: string;
  owner: string;
  bounces: string;
} {
  return {
    request: requestAddress(list),
    join: joinAddress(list),
    leave: leaveAddress(list),
    owner: ownerAddress(list),
    bounces: bouncesAddress(list),
  };
}

/** RFC 2919 list-id: `<name.domain>`. */
export function listId(list: ListAddressParts): string {
  return `${list.name}.${list.domain}`.toLowerCase();
}

/** Fields we replace: a copy carried in from an upstream list described that list, not this one. */
const REPLACED = new Set([
  "list-id",
  "list-help",
  "list-post",
  "list-subscribe",
  "list-unsubscribe",
  "list-unsubscribe-post",
  "list-archive",
  "list-owner",
  "precedence",
]);

/** The fields decorate adds, in order, as [name, value]. */
export function listFields(list: ListConfig, opts: { archiveUrl?: string } = {}): [string, string][] {
  const a = listAddresses(list);
  const id = listId(list);
  const phrase = list.description ? formatPhrase("List-Id description", list.description) + " " : "";
  const fields: [string, string][] = [
    ["List-Id", `${phrase}<${id}>`],
    ["List-Post", `<mailto:${list.address}>`],
    ["List-Help", `<mailto:${a.request}?subject=help>`],
    ["List-Subscribe", `<mailto:${a.join}>`],
    ["List-Unsubscribe", `<mailto:${a.leave}>`],
  ];
  const archive = opts.archiveUrl ?? list.archive_url;
  if (archive !== undefined) {
    // a URL goes between angle brackets: no whitespace, controls, brackets or quotes (RFC 2369 section 2)
    if (!/^[\x21-\x7e]+$/.test(archive) || /[<>"]/.test(archive))
      throw new HeaderInjectionError("List-Archive", archive);
    fields.push(["List-Archive", `<${archive}>`]);
  }
  fields.push(["List-Owner", `<mailto:${a.owner}>`], ["X-BeenThere", list.address], ["Precedence", "list"]);
  for (const [name, value] of fields) assertHeaderSafe(name, value);
  return fields;
}

function normalise(s: string): string {
  return s.replace(/\s+/g, " ").trim().toLowerCase();
}

/**
 * Does this Subject value (raw, latin1, possibly RFC 2047 encoded) already carry the prefix?
 * Anywhere counts: after `Re:`/`Fwd:` chains, inside encoded-words, or moved by a reader's client.
 */
export function hasSubjectPrefix(value: string, prefix: string): boolean {
  const p = normalise(prefix);
  if (p === "") return true;
  return normalise(decodeHeaderText(subjectHead(value))).includes(p);
}

/**
 * Only the start of a Subject is decoded to look for the prefix (caps before cleaning: a Subject can
 * be most of a 1 MiB header); the field's bytes are kept whole all the same.
 */
export const SUBJECT_SCAN_CHARS = 16 * 1024;

function subjectHead(value: string): string {
  return value.length > SUBJECT_SCAN_CHARS ? value.slice(0, SUBJECT_SCAN_CHARS) : value;
}

/** The prefix as header text; `beforeWord`: the next thing is an encoded-word, which would eat a plain space. */
function prefixText(prefix: string, beforeWord: boolean): string {
  const p = prefix.trim();
  if (PRINTABLE_ASCII.test(p) && !/=\?/.test(p)) return p;
  return encodeWords(beforeWord ? p + " " : p);
}

const STARTS_WITH_WORD = /^=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=/;

/** The Subject field with the prefix put in front of its value; the rest of its bytes are kept. */
function prefixedSubject(h: Buffer, start: number, end: number, prefix: string, eol: Eol): Buffer {
  const colon = h.indexOf(0x3a, start);
  let p = colon + 1;
  while (h[p] === 0x20 || h[p] === 0x09) p++;
  const rest = h.subarray(p, end);
  const unfolded = rest.toString("latin1").replace(/\r?\n/g, "").trim();
  const onNextLine = h[p] === 0x0d || h[p] === 0x0a; // "Subject:" + fold: the continuation brings its own space
  const text = prefixText(prefix, STARTS_WITH_WORD.test(unfolded));
  const restFirstLine = rest.indexOf(0x0a) === -1 ? rest.length : rest.indexOf(0x0a);
  const lineLength = colon + 1 - start + 1 + text.length + 1 + restFirstLine;
  // keep the first line within RFC 5322's 998 by folding after the prefix when needed
  const sep = onNextLine ? "" : lineLength > 998 ? eol + " " : " ";
  return Buffer.concat([h.subarray(start, colon + 1), Buffer.from(" " + text + sep, "latin1"), rest]);
}

/**
 * Add the list fields at the top of the header (in the message's own line endings), replace
 * upstream lists' List-* and Precedence fields, keep foreign X-BeenThere (loop detection across
 * chained lists), and put the subject prefix in once. Every other byte is copied unchanged.
 */
export function decorate(raw: Buffer, list: ListConfig, opts: { archiveUrl?: string } = {}): Buffer {
  const split = splitHeader(raw);
  const eol: Eol = split ? split.eol : raw[0] === 0x0d ? "\r\n" : "\n";
  const header = split ? split.header : raw.subarray(0, 0);
  const fields = headerFields(header);
  const prefix = list.subject_prefix?.trim()
    ? assertHeaderSafe("subject_prefix", list.subject_prefix)
    : undefined;

  const added = listFields(list, opts);
  const chunks: Buffer[] = [];
  let cursor = 0;
  let subjectSeen = false;
  const ourBeenThere = list.address.toLowerCase();
  for (const f of fields) {
    const key = f.name.toLowerCase();
    let replacement: Buffer | null | undefined; // undefined: keep, null: drop
    if (REPLACED.has(key) || (key === "x-beenthere" && f.value.trim().toLowerCase() === ourBeenThere)) {
      replacement = null;
    } else if (key === "subject" && !subjectSeen) {
      subjectSeen = true;
      if (prefix !== undefined && !hasSubjectPrefix(f.value, prefix)) {
        // a value longer than the scan is not empty (fieldValue trims it), whatever its start decodes to
        replacement =
          f.value.length > SUBJECT_SCAN_CHARS || decodeHeaderText(f.value).trim()
            ? prefixedSubject(header, f.start, f.end, prefix, eol)
            : Buffer.from(`Subject: ${prefixText(prefix, false)} (no subject)${eol}`, "latin1");
      }
    }
    if (replacement === undefined) continue;
    chunks.push(raw.subarray(cursor, f.start));
    if (replacement) chunks.push(replacement);
    cursor = f.end;
  }
  if (!subjectSeen && prefix !== undefined)
    added.push(["Subject", `${prefixText(prefix, false)} (no subject)`]);

  const top = Buffer.from(added.map(([n, v]) => `${n}: ${v}${eol}`).join(""), "latin1");
  const tail = split || raw.length > 0 ? raw.subarray(cursor) : Buffer.from(eol, "latin1");
  return Buffer.concat([top, ...chunks, tail]);
}
