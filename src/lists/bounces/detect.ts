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
import { cleanAddress } from "./address.js";
import { findComplaint, type Complaint } from "./arf.js";
import { parseDeliveryStatus, type BounceKind } from "./dsn.js";
import { partText } from "./decode.js";
import { headerAll, leaves, parseHeaderBlock, parseMessage, type HeaderField } from "./mime.js";
import { Collector } from "./collect.js";
import { headerAddresses, headText, noticeLines, ownAddresses, returnedFields } from "./notice.js";
import type { BounceReason } from "./reason.js";
import { parseSesNotification, type SesEvent } from "./ses.js";
import { autoReplySign, machineMade, subjectOf } from "./signs.js";
import { detectGeneric, noticeRegion } from "./text-generic.js";
import { detectExim, detectPostfixText, detectQmail } from "./text-mta.js";
import type { TextDetector, TextMatch } from "./text-util.js";
import { detectExchange, detectPlain } from "./text-vendor.js";

export type { BounceKind } from "./dsn.js";
export type { BounceReason } from "./reason.js";
export type { Complaint } from "./arf.js";

export type BounceFormat =
  "rfc3464" | "ses" | "qmail" | "exim" | "postfix-old" | "exchange" | "plain" | "none";

export interface BounceDetail {
  /** canonical: domain lowercased, local part as written */
  address: string;
  /**
   * permanent: a hard bounce, the address is gone (user unknown, host unknown, moved); temporary: a
   * soft one that may pass another day (full mailbox, refusal of our content or host, delay)
   */
  kind: BounceKind;
  /** why, in Sisimai's vocabulary (./reason.ts); "delayed" for a delay warning, "undefined" when nothing says */
  reason: BounceReason;
  /** RFC 3463 status, e.g. "5.1.1" */
  status?: string;
  /** RFC 3464 Action, lowercased (DSN only) */
  action?: string;
  /** the remote server's words, one printable line */
  diagnostic?: string;
  /** the DSN's Diagnostic-Code type, lowercased ("smtp", "x-unix"), when given */
  diagnosticType?: string;
  /** where the address was read: "Original-Recipient", "Final-Recipient", "qmail recipient paragraph", ... */
  source: string;
}

/** What a reader (DSN, MTA text) finds, before ./collect.ts gives it its reason and final kind. */
export type BounceFinding = Omit<BounceDetail, "reason">;

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
   * a DSN that lists only delivered, relayed or expanded recipients, or a feedback-loop complaint
   */
  notBounce?: "auto-reply" | "no-failure" | "complaint";
  /** when notBounce is "complaint": who complained (the recipient of our message) and the report's type */
  complaint?: Complaint;
}

/** Only this much of a message is examined: the notice comes first, the returned message last. */
export const MAX_SCAN_BYTES = 1024 * 1024;
/** Notice text kept for classifying reasons when a recipient's own words say nothing. */
const MAX_NOTICE_TEXT = 8 * 1024;

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

/**
 * `wrapped`: the message is the returned part of a notice being read for its reasons (a gateway
 * such as InterScan wraps the bounce it got): read its text as a mail system's even though its
 * headers are the original sender's.
 */
function scan(raw: Buffer, depth = 0, wrapped = false): BounceScan {
  if (!Buffer.isBuffer(raw) || raw.length === 0) return notRecognized("none", "empty input");
  const root = parseMessage(raw.subarray(0, MAX_SCAN_BYTES).toString("latin1"));
  if (root === null) return notRecognized("none", "not a mail message: no header block");
  const parts = leaves(root);
  const h = root.headers;

  // 0. feedback-loop complaints (RFC 5965): never bounces
  const complaint = findComplaint(root, parts);
  if (complaint !== undefined) {
    return {
      ...notRecognized(
        "none",
        `a feedback-loop complaint (${complaint.feedbackType ?? "unknown type"}), not a delivery failure`,
      ),
      notBounce: "complaint",
      complaint,
    };
  }

  // Amazon SES notifications by mail: JSON, not a notice
  const plain = parts.find((p) => p.type === "text/plain" || p.type === "application/json");
  const ses = plain === undefined ? undefined : parseSesNotification(partText(plain));
  if (ses !== undefined) return sesResult(ses, h);

  const lines = noticeLines(parts);
  const region = noticeRegion(lines);
  const context = headText([subjectOf(h), ...region], MAX_NOTICE_TEXT);

  // 1. RFC 3464
  // when neither a recipient's words nor the notice say why, a returned message that is itself a
  // bounce (a gateway passing on the notice it got) may: read it once, only then
  const inner = depth === 0 ? parts.find((p) => p.type === "message/rfc822") : undefined;
  const found = new Collector(
    context,
    inner === undefined ? undefined : () => scan(Buffer.from(inner.body, "latin1"), depth + 1, true),
  );
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
  if (blocks > 0 && unreadable === 0) {
    return {
      ...notRecognized(
        "rfc3464",
        "the delivery-status report lists no failed or delayed recipient (delivered, relayed and expanded are not bounces)",
      ),
      notBounce: "no-failure",
    };
  }

  // 2. the notice's text
  const auto = autoReplySign(h);
  if (auto !== undefined)
    return {
      ...notRecognized("none", `an automatic reply (${auto}), not a delivery failure`),
      notBounce: "auto-reply",
    };
  const automated = wrapped || machineMade(h);
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
  if (!automated) {
    if (unreadable > 0)
      return notRecognized("rfc3464", "the delivery-status report names no readable recipient address");
    return notRecognized("none", NO_PATTERN);
  }

  // 3. delivery-status fields written into the notice's text (Amazon WorkMail, some gateways)
  if (region.some((l) => /^(?:final|original)-recipient\s*:/i.test(l))) {
    for (const r of parseDeliveryStatus(region.join("\n")).bounces) found.add(r);
    if (found.size > 0) return found.result(empty?.format ?? "plain");
  }

  // 4. X-Failed-Recipients (Exim, Gmail), when the text gave no address
  for (const value of headerAll(h, "x-failed-recipients")) {
    for (const piece of value.split(",")) {
      const address = cleanAddress(piece);
      if (address !== undefined) found.add({ address, kind: "permanent", source: "X-Failed-Recipients" });
    }
  }
  if (found.size > 0) return found.result(empty?.format ?? "plain");

  // 5. a notice that returns another notice (a relay forwarding the bounce it got): read the inner one
  if (inner !== undefined && machineMade(parseHeaderBlock(inner.body.slice(0, 64 * 1024)).fields)) {
    const nested = scan(Buffer.from(inner.body, "latin1"), depth + 1);
    if (nested.recognized) return nested;
  }

  // 6. any notice that names its failed recipients near the server's words
  const returned = returnedFields(parts, lines, region.length);
  const generic = detectGeneric(lines, {
    exclude: ownAddresses(h, returned),
    returnedTo: headerAddresses(returned, ["to"]),
    subject: subjectOf(h),
  });
  if (generic !== null) {
    for (const f of generic.findings) found.add(f);
    return found.result(empty?.format ?? generic.format);
  }
  if (unreadable > 0)
    return notRecognized("rfc3464", "the delivery-status report names no readable recipient address");
  if (empty !== undefined) {
    return notRecognized(
      empty.format,
      empty.reason ?? `looks like a ${empty.format} bounce, but no recipient address could be read`,
    );
  }
  return notRecognized("none", NO_PATTERN);
}

function sesResult(ses: SesEvent, h: readonly HeaderField[]): BounceScan {
  if (ses.type === "delivery") {
    return {
      ...notRecognized("ses", "an Amazon SES delivery notification: delivered, not a bounce"),
      notBounce: "no-failure",
    };
  }
  if (ses.type === "complaint") {
    const complaint: Complaint = {};
    if (ses.address !== undefined) complaint.address = ses.address;
    if (ses.feedbackType !== undefined) complaint.feedbackType = ses.feedbackType;
    return {
      ...notRecognized("ses", "an Amazon SES complaint notification, not a delivery failure"),
      notBounce: "complaint",
      complaint,
    };
  }
  const found = new Collector(subjectOf(h));
  for (const r of ses.recipients) found.add(r);
  return found.size > 0
    ? found.result("ses")
    : notRecognized("ses", "an Amazon SES bounce notification that names no readable recipient");
}

function notRecognized(format: BounceFormat, reason: string): BounceScan {
  return { recognized: false, format, permanent: [], temporary: [], details: [], reason };
}
