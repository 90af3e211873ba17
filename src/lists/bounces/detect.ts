/**
 * Bounce detection: which addresses a delivery failure notice names, and whether each failure is
 * permanent or temporary.
 *
 * Order of trust: an RFC 3464 delivery-status part, when there is one with recipient blocks, is the
 * whole answer (including "this DSN reports only successful deliveries"). Without one, the text of
 * the notice is matched against the layouts of known MTAs (qmail, Exim, Postfix, Exchange, then
 * plain-language notices), first match with an address wins; Exim's and Gmail's
 * `X-Failed-Recipients` header is the last resort.
 *
 * Text is only read from messages that look machine-made (a mail-system sender or bounce subject,
 * a null Return-Path, X-Failed-Recipients, Auto-Submitted) and never from automatic replies
 * (vacation, out-of-office), which are not delivery failures whatever they say.
 *
 * Bounded: at most MAX_SCAN_BYTES of the input are looked at, the MIME walk is capped (./mime.ts),
 * and nothing here throws: junk gives `recognized: false` with the reason.
 */
import { cleanAddress, sanitize } from "./address.js";
import { parseDeliveryStatus, type BounceKind } from "./dsn.js";
import { decodeWords, htmlToText, partText } from "./decode.js";
import { header, headerAll, leaves, parseMessage, type HeaderField, type MimePart } from "./mime.js";
import { detectExim, detectPostfixText, detectQmail } from "./text-mta.js";
import type { TextDetector, TextMatch } from "./text-util.js";
import { detectExchange, detectPlain } from "./text-vendor.js";

export type { BounceKind } from "./dsn.js";

export type BounceFormat = "rfc3464" | "qmail" | "exim" | "postfix-old" | "exchange" | "plain" | "none";

export interface BounceDetail {
  /** canonical: domain lowercased, local part as written */
  address: string;
  kind: BounceKind;
  /** RFC 3463 status, e.g. "5.1.1" */
  status?: string;
  /** RFC 3464 Action, lowercased (DSN only) */
  action?: string;
  /** the remote server's words, one printable line */
  diagnostic?: string;
  /** where the address was read: "Original-Recipient", "Final-Recipient", "qmail recipient paragraph", ... */
  source: string;
  /** why delivery failed, in words (user unknown, mailbox full, ...), when the detector can tell */
  reason?: string;
}

export interface BounceScan {
  /** true when at least one bounced address was found */
  recognized: boolean;
  format: BounceFormat;
  permanent: string[];
  temporary: string[];
  details: BounceDetail[];
  /** when not recognized: why, in words an operator can act on */
  reason?: string;
  /**
   * when not recognized because the message is positively no delivery failure: an automatic reply,
   * or a DSN that lists only delivered, relayed or expanded recipients
   */
  notBounce?: "auto-reply" | "no-failure" | "complaint";
  /** for a feedback-loop complaint (RFC 5965 ARF): whom it is about and its Feedback-Type */
  complaint?: { address?: string; feedbackType?: string };
}

/** Only this much of a message is examined: the notice comes first, the returned message last. */
export const MAX_SCAN_BYTES = 1024 * 1024;
const MAX_LINES = 20_000;
const MAX_LINE = 1000;

export const NO_PATTERN = "no delivery-status part and no known text pattern";

const TEXT_DETECTORS: readonly TextDetector[] = [
  detectQmail,
  detectExim,
  detectPostfixText,
  detectExchange,
  detectPlain,
];

/** Scan one raw message. Never throws; anything unreadable is `recognized: false` with a reason. */
export async function scanBounce(raw: Buffer): Promise<BounceScan> {
  try {
    return scan(raw);
  } catch (err) {
    // a bug or an input we did not foresee must not take a runner down: report it as unrecognized
    return notRecognized("none", `could not be parsed (${err instanceof Error ? err.message : String(err)})`);
  }
}

function scan(raw: Buffer): BounceScan {
  if (!Buffer.isBuffer(raw) || raw.length === 0) return notRecognized("none", "empty input");
  const root = parseMessage(raw.subarray(0, MAX_SCAN_BYTES).toString("latin1"));
  if (root === null) return notRecognized("none", "not a mail message: no header block");
  const parts = leaves(root);

  // 1. RFC 3464
  const found = new Collector();
  let blocks = 0;
  let unreadable = 0;
  for (const p of parts) {
    if (p.type !== "message/delivery-status" && p.type !== "message/global-delivery-status") continue;
    const report = parseDeliveryStatus(partText(p));
    blocks += report.blocks;
    unreadable += report.unreadable;
    for (const r of report.bounces) found.add(r);
  }
  if (found.size > 0) return found.result("rfc3464");
  if (blocks > 0) {
    if (unreadable > 0)
      return notRecognized("rfc3464", "the delivery-status report names no readable recipient address");
    return {
      ...notRecognized(
        "rfc3464",
        "the delivery-status report lists no failed or delayed recipient (delivered, relayed and expanded are not bounces)",
      ),
      notBounce: "no-failure",
    };
  }

  // 2. the notice's text
  const h = root.headers;
  const auto = autoReplySign(h);
  if (auto !== undefined)
    return {
      ...notRecognized("none", `an automatic reply (${auto}), not a delivery failure`),
      notBounce: "auto-reply",
    };
  const automated = machineMade(h);
  const lines = noticeLines(parts);
  let empty: TextMatch | undefined;
  for (const detect of TEXT_DETECTORS) {
    const m = detect(lines);
    if (m === null) continue;
    if (!automated) {
      return notRecognized(
        "none",
        `the text reads like a ${m.format} bounce, but the message does not come from a mail system (From, Subject, Return-Path)`,
      );
    }
    if (m.findings.length === 0) {
      empty ??= m;
      continue;
    }
    for (const f of m.findings) found.add(f);
    return found.result(m.format);
  }

  // 3. X-Failed-Recipients (Exim, Gmail), when the text gave no address
  if (automated) {
    for (const value of headerAll(h, "x-failed-recipients")) {
      for (const piece of value.split(",")) {
        const address = cleanAddress(piece);
        if (address !== undefined) found.add({ address, kind: "permanent", source: "X-Failed-Recipients" });
      }
    }
    if (found.size > 0) return found.result(empty?.format ?? "plain");
  }
  if (empty !== undefined) {
    return notRecognized(
      empty.format,
      empty.reason ?? `looks like a ${empty.format} bounce, but no recipient address could be read`,
    );
  }
  return notRecognized("none", NO_PATTERN);
}

function notRecognized(format: BounceFormat, reason: string): BounceScan {
  return { recognized: false, format, permanent: [], temporary: [], details: [], reason };
}

/** Findings in order of appearance, one per address; a permanent failure outranks a temporary one. */
class Collector {
  private readonly byAddress = new Map<string, BounceDetail>();

  get size(): number {
    return this.byAddress.size;
  }

  add(f: BounceDetail): void {
    const d: BounceDetail = { address: f.address, kind: f.kind, source: f.source };
    if (f.status !== undefined) d.status = f.status;
    if (f.action !== undefined) d.action = f.action;
    if (f.diagnostic !== undefined) d.diagnostic = f.diagnostic;
    const existing = this.byAddress.get(d.address);
    if (existing === undefined || (existing.kind === "temporary" && d.kind === "permanent"))
      this.byAddress.set(d.address, d);
  }

  result(format: BounceFormat): BounceScan {
    const details = [...this.byAddress.values()];
    return {
      recognized: details.length > 0,
      format,
      permanent: details.filter((d) => d.kind === "permanent").map((d) => d.address),
      temporary: details.filter((d) => d.kind === "temporary").map((d) => d.address),
      details,
    };
  }
}

/** The notice's text: its text/plain parts (HTML only when there is no plain text), never the returned message. */
function noticeLines(parts: readonly MimePart[]): string[] {
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

const SYSTEM_SENDER =
  /mailer-daemon|postmaster|mail delivery|mail system|mail administrator|system administrator|mailer|no-?reply/i;
const BOUNCE_SUBJECT =
  /undeliver|non-?deliver|delivery (?:status|failure|failed|notification|report|problem|has failed)|returned mail|failure notice|mail delivery|delayed mail|not (?:be )?delivered|could not (?:be )?deliver|warning: message .* delayed/i;
const REPLY_PREFIX = /^\s*(?:re|fwd?|aw|wg|tr|sv|vs|rv)\s*(?:\[\d+\])?\s*:/i;
const AUTO_REPLY_SUBJECT =
  /^\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply|auto:|on vacation|vacation|away from (?:the )?office|abwesenheit|r[ée]ponse automatique|respuesta autom[áa]tica)/i;

function subjectOf(h: readonly HeaderField[]): string {
  return sanitize(decodeWords(header(h, "subject") ?? ""), 300);
}

function systemSender(h: readonly HeaderField[]): boolean {
  return (
    SYSTEM_SENDER.test(decodeWords(header(h, "from") ?? "")) ||
    /^<\s*(?:MAILER-DAEMON[^>]*)?>$/i.test((header(h, "return-path") ?? "").trim())
  );
}

function bounceSubject(h: readonly HeaderField[]): boolean {
  const s = subjectOf(h);
  return !REPLY_PREFIX.test(s) && BOUNCE_SUBJECT.test(s);
}

/** Signs of a machine-made notice rather than a person's message. */
function machineMade(h: readonly HeaderField[]): boolean {
  const autoSubmitted = (header(h, "auto-submitted") ?? "").trim().toLowerCase();
  return (
    systemSender(h) ||
    bounceSubject(h) ||
    header(h, "x-failed-recipients") !== undefined ||
    (autoSubmitted !== "" && !autoSubmitted.startsWith("no"))
  );
}

/** Why the message is an automatic reply (vacation, out-of-office), or undefined when it is not one. */
function autoReplySign(h: readonly HeaderField[]): string | undefined {
  for (const name of ["x-autoreply", "x-autorespond", "x-autoresponder"]) {
    if (header(h, name) !== undefined) return `${name} header`;
  }
  for (const name of ["precedence", "x-precedence"]) {
    if (/auto[_-]?reply/i.test(header(h, name) ?? "")) return `${name}: auto_reply`;
  }
  const subject = subjectOf(h);
  if (AUTO_REPLY_SUBJECT.test(subject)) return `subject ${JSON.stringify(subject.slice(0, 60))}`;
  // Postfix and others mark their bounces auto-replied too, so the header alone is not enough
  if (
    /^auto-replied/i.test((header(h, "auto-submitted") ?? "").trim()) &&
    !systemSender(h) &&
    !bounceSubject(h)
  ) {
    return "Auto-Submitted: auto-replied";
  }
  return undefined;
}
