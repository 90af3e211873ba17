/**
 * Mail qrunner writes itself: rejections, held-post and bounce notices, command replies. Each is a
 * complete RFC 5322 message (CRLF, MIME text/plain UTF-8) marked as automatic per RFC 3834
 * (Auto-Submitted, plus the de facto `Precedence: bulk` that older vacation programs look for).
 * Every header input is checked: a CR, LF or NUL throws HeaderInjectionError.
 */
import { randomBytes } from "node:crypto";
import type { ListConfig } from "./schema.js";
import {
  assertHeaderSafe,
  encodeHeaderText,
  formatPhrase,
  HeaderInjectionError,
  listAddresses,
} from "./headers.js";

export { HeaderInjectionError };

export interface NoticeInput {
  /** a bare address (`dev-owner@example.org`) */
  from: string;
  /** display name for From */
  fromName?: string;
  to: string | readonly string[];
  /** where replies go, when not to From (a held-post notice: the list's -request+confirm address) */
  replyTo?: string;
  subject: string;
  text: string;
  /** Message-ID of the message this answers (with or without angle brackets) */
  inReplyTo?: string;
  list?: Pick<ListConfig, "name" | "domain" | "address">;
  /** default: auto-replied when inReplyTo is given, else auto-generated */
  autoSubmitted?: "auto-replied" | "auto-generated";
  /** default: now */
  date?: Date;
}

/** What the caller queues: envelope and bytes. */
export interface Notice {
  sender: string;
  recipients: string[];
  message: Buffer;
}

const ADDR = /^[^\s<>,;:"()\\@]+@[^\s<>,;:"()\\@]+$/;

function checkAddress(field: string, address: string): string {
  assertHeaderSafe(field, address);
  if (!ADDR.test(address)) throw new HeaderInjectionError(field, address);
  return address;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 5322 date-time in UTC: `Thu, 28 Nov 2024 13:25:00 +0000`. */
export function rfc5322Date(d: Date): string {
  const p2 = (n: number): string => String(n).padStart(2, "0");
  return (
    `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`
  );
}

/** Fold an unstructured header at spaces so lines stay near 78 characters (never breaks a word). */
function fold(name: string, value: string): string {
  const words = value.split(" ");
  let line = `${name}:`;
  const lines: string[] = [];
  for (const w of words) {
    if (line.length + 1 + w.length > 78 && line.length > name.length + 1) {
      lines.push(line);
      line = "";
    }
    line += " " + w;
  }
  lines.push(line);
  return lines.join("\r\n");
}

/** Quoted-printable (RFC 2045) of UTF-8 text with CRLF line breaks; lines at most 76 characters. */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split("\r\n")) {
    const bytes = Buffer.from(line, "utf8");
    let cur = "";
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] as number;
      const last = i === bytes.length - 1;
      // "From " at a line start is encoded so that the text survives an mbox unchanged
      const literal =
        (b >= 33 && b <= 126 && b !== 61 && !(i === 0 && b === 70 && line.startsWith("From "))) ||
        ((b === 32 || b === 9) && !last);
      const piece = literal ? String.fromCharCode(b) : "=" + b.toString(16).toUpperCase().padStart(2, "0");
      if (cur.length + piece.length > 75) {
        out.push(cur + "=");
        cur = "";
      }
      cur += piece;
    }
    out.push(cur);
  }
  return out.join("\r\n");
}

function messageIdFor(domain: string): string {
  return `<${Date.now().toString(36)}.${randomBytes(9).toString("hex")}@${domain}>`;
}

/** A complete notice message. Throws HeaderInjectionError on any unsafe header input. */
export function composeNotice(input: NoticeInput): Buffer {
  const from = checkAddress("From", input.from);
  const to = (typeof input.to === "string" ? [input.to] : [...input.to]).map((a) => checkAddress("To", a));
  if (to.length === 0) throw new HeaderInjectionError("To", "");
  const subject = encodeHeaderText("Subject", input.subject);
  const domain = input.list?.domain ?? from.slice(from.lastIndexOf("@") + 1);
  const fromField = input.fromName ? `${formatPhrase("From name", input.fromName)} <${from}>` : from;
  const headers = [
    `From: ${fromField}`,
    fold("To", to.join(", ")),
    ...(input.replyTo !== undefined ? [`Reply-To: ${checkAddress("Reply-To", input.replyTo)}`] : []),
    fold("Subject", subject),
    `Date: ${rfc5322Date(input.date ?? new Date())}`,
    `Message-ID: ${messageIdFor(domain)}`,
  ];
  if (input.inReplyTo !== undefined) {
    const id = assertHeaderSafe("In-Reply-To", input.inReplyTo.trim());
    const ref = id.startsWith("<") ? id : `<${id}>`;
    if (!/^<[^<>\s]+>$/.test(ref)) throw new HeaderInjectionError("In-Reply-To", id);
    headers.push(`In-Reply-To: ${ref}`, `References: ${ref}`);
  }
  const text = input.text.replace(/\r\n|\r|\n/g, "\r\n").replace(/(\r\n)?$/, "\r\n");
  // 7bit when every character is ASCII (UTF-8 length equals UTF-16 length), no NUL, lines within 998
  const plain =
    Buffer.byteLength(text, "utf8") === text.length &&
    !text.includes("\0") &&
    text.split("\r\n").every((l) => l.length <= 998);
  headers.push(
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    `Content-Transfer-Encoding: ${plain ? "7bit" : "quoted-printable"}`,
    `Auto-Submitted: ${input.autoSubmitted ?? (input.inReplyTo !== undefined ? "auto-replied" : "auto-generated")}`,
    "Precedence: bulk",
    // Exchange/Outlook honour this instead of Auto-Submitted: no out-of-office replies to notices
    "X-Auto-Response-Suppress: OOF, AutoReply",
  );
  const body = plain ? text : quotedPrintable(text.slice(0, -2)) + "\r\n";
  return Buffer.concat([Buffer.from(headers.join("\r\n") + "\r\n\r\n", "latin1"), Buffer.from(body, "utf8")]);
}

/**
 * Notices are sent from the list's -bounces address (envelope) so that a notice that bounces is
 * seen by bounce processing instead of looping back into the list.
 */
export function notice(
  list: Pick<ListConfig, "name" | "domain" | "address">,
  input: Omit<NoticeInput, "list">,
): Notice {
  const message = composeNotice({ ...input, list });
  return {
    sender: listAddresses(list).bounces,
    recipients: typeof input.to === "string" ? [input.to] : [...input.to],
    message,
  };
}
