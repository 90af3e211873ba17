/**
 * Why a delivery failed, in the vocabulary of Sisimai (https://libsisimai.org, BSD-2): userunknown,
 * mailboxfull, hostunknown, blocked, ... and whether that makes the bounce hard (the address is dead:
 * the member should go) or soft (it may pass another day: a full mailbox, a refusal of our content or
 * of our host, a delay).
 *
 * Two sources, as Sisimai does it: the RFC 3463 status code when it names a specific cause (5.2.2 is a
 * full mailbox whatever the words), and otherwise the words the servers write ("User unknown", "Quota
 * exceeded", ...), matched as lowercased substrings in a fixed order (first match wins), then the
 * status class as a last resort. The phrase lists are our own condensation of the patterns Sisimai's
 * lib/sisimai/reason/*.rb match (credit to its authors); the status table follows its
 * lib/sisimai/smtp/status.rb. Substring search over a capped text: linear, no regex backtracking.
 */

import { findStatus } from "./address.js";
import { DECISIVE, PHRASES, STATUS_REASON } from "./reason-phrases.js";
import { reasonFromVendorCode } from "./vendor-codes.js";

export type BounceReason =
  | "userunknown"
  | "hostunknown"
  | "hasmoved"
  | "notaccept"
  | "mailboxfull"
  | "mesgtoobig"
  | "exceedlimit"
  | "suspend"
  | "norelaying"
  | "filtered"
  | "rejected"
  | "blocked"
  | "spamdetected"
  | "virusdetected"
  | "policyviolation"
  | "securityerror"
  | "toomanyconn"
  | "expired"
  | "networkerror"
  | "systemfull"
  | "systemerror"
  | "mailererror"
  | "contenterror"
  | "syntaxerror"
  | "onhold"
  | "delayed"
  | "undefined";

/** The reasons that make a bounce hard: the mailbox or its domain does not exist (any more). */
const HARD: ReadonlySet<BounceReason> = new Set(["userunknown", "hostunknown", "hasmoved"]);

/** Longest text examined: the server's reply is at the start, the rest is boilerplate. */
const MAX_REASON_TEXT = 8 * 1024;

export interface ReasonInput {
  /** the server's words and the notice's, any length (capped here) */
  text?: string | undefined;
  /** RFC 3463 status, when known */
  status?: string | undefined;
}

/** The detail part of a status ("5.1.1" -> "1.1"), or undefined. */
function statusDetail(status: string | undefined): string | undefined {
  if (status === undefined) return undefined;
  const dot = status.indexOf(".");
  return dot < 0 ? undefined : status.slice(dot + 1);
}

/** The reason the words give, or undefined. */
export function reasonFromText(text: string | undefined): BounceReason | undefined {
  if (text === undefined || text === "") return undefined;
  const t = (text.length > MAX_REASON_TEXT ? text.slice(0, MAX_REASON_TEXT) : text)
    .toLowerCase()
    .replace(/\s+/g, " ");
  for (const [reason, phrases] of PHRASES) {
    for (const p of phrases) if (t.includes(p)) return reason;
  }
  return undefined;
}

/** The reason a status code gives on its own, or undefined (X.0.0 and unknown details). */
export function reasonFromStatus(status: string | undefined): BounceReason | undefined {
  const d = statusDetail(status);
  return d === undefined ? undefined : STATUS_REASON[d];
}

export type SmtpCommand = "RCPT" | "DATA" | "MAIL" | undefined;

/** The SMTP command a refusal answered, when the text says ("in reply to RCPT TO command", "after end of data"). */
export function smtpCommand(text: string | undefined): SmtpCommand {
  if (text === undefined) return undefined;
  const t = (text.length > MAX_REASON_TEXT ? text.slice(0, MAX_REASON_TEXT) : text)
    .toLowerCase()
    .replace(/\s+/g, " ");
  if (
    t.includes("rcpt to command") ||
    t.includes("in reply to rcpt") ||
    t.includes("rcpt to:<") ||
    t.includes("rcpt to: <") ||
    t.includes("after rcpt") ||
    t.includes(">>> rcpt") ||
    t.includes("rcpt command") ||
    t.includes("rcpt_to") ||
    // Sun/Oracle Messaging Server's words for a refusal of RCPT
    t.includes("server has rejected address") ||
    // m-FILTER writes the command on a line of its own under "-------SMTP command"
    t.includes("-smtp command rcpt")
  )
    return "RCPT";
  if (
    t.includes("end of data") ||
    t.includes("after data") ||
    t.includes("data command") ||
    t.includes(">>> data") ||
    t.includes("-smtp command data")
  )
    return "DATA";
  if (t.includes("mail from") || t.includes("after mail")) return "MAIL";
  return undefined;
}

/** Reasons that, when the words say them, outrank a 5.1.1 status (a full mailbox answered with 5.1.1). */
const OVER_USERUNKNOWN: ReadonlySet<BounceReason> = new Set([
  "mailboxfull",
  "norelaying",
  "hasmoved",
  "suspend",
  "blocked",
  "rejected",
  "notaccept",
]);

/**
 * Why the delivery failed: a decisive status, else the words, else the status, else "undefined".
 * As in Sisimai, "user unknown" is an unknown user only when it answered RCPT or carries an address
 * status (X.1.x): said after DATA, or under a status of another kind, it is a content filter
 * pretending ("filtered"). A temporary (4.x.x) failure is never a dead domain: "host not found, try
 * again" is a network error.
 */
export function classifyReason(input: ReasonInput & { command?: SmtpCommand }): BounceReason {
  const detail = statusDetail(input.status);
  const temporary =
    input.status?.startsWith("4") === true ||
    (input.status === undefined && (input.text ?? "").toLowerCase().includes("try again"));
  const byStatus = reasonFromStatus(input.status);
  const soften = (r: BounceReason): BounceReason =>
    temporary && (r === "hostunknown" || r === "hasmoved") ? "networkerror" : r;
  if (detail !== undefined && DECISIVE.has(detail) && byStatus !== undefined) return soften(byStatus);
  // a provider's documented code (Orange's "LPN007_416") names the cause more precisely than its status
  const byVendor = reasonFromVendorCode(input.text);
  if (byVendor !== undefined) return soften(byVendor);
  const byText = reasonFromText(input.text);
  const command = input.command ?? smtpCommand(input.text);
  // a refusal of MAIL FROM is about us, the sender: our address ("rejected") unless the words say
  // what else (our host blocked, a policy, spam); never the recipient's mailbox
  if (command === "MAIL") {
    return byText === undefined ||
      byText === "userunknown" ||
      byText === "filtered" ||
      byText === "hostunknown"
      ? "rejected"
      : byText;
  }
  if (byStatus === "userunknown") {
    return byText !== undefined && OVER_USERUNKNOWN.has(byText) ? byText : "userunknown";
  }
  if (byText === "userunknown" && domainDoesNotExist(input.text)) return soften("hostunknown");
  if (byText === "userunknown") {
    // a security or policy status (X.7.x) says what the refusal was, whatever the words pretend
    if (detail?.startsWith("7.") === true) return "filtered";
    if (command === "RCPT" || detail?.startsWith("1.") === true || detail === "2.1") return "userunknown";
    // after DATA the address was accepted: the refusal is about the message, whatever it says
    // a DSN that only says 5.0.0 does not vouch for the address either (Sisimai reads it the same way)
    if (command === "DATA" || (detail !== undefined && /^(?:0\.0|2\.|7\.)/.test(detail))) return "filtered";
    return "userunknown";
  }
  return soften(byText ?? byStatus ?? "undefined");
}

/** Whether the words say a domain name, not an address, "does not exist" ("553 example.com does not exist"). */
function domainDoesNotExist(text: string | undefined): boolean {
  if (text === undefined) return false;
  const t = (text.length > MAX_REASON_TEXT ? text.slice(0, MAX_REASON_TEXT) : text).toLowerCase();
  const at = t.indexOf(" does not exist");
  if (at < 0) return false;
  const before = t.slice(Math.max(0, at - 255), at);
  const token = before.slice(before.lastIndexOf(" ") + 1).replace(/^["'<[(]|["'>\])]$/g, "");
  return !token.includes("@") && /^[a-z0-9-]+(?:\.[a-z0-9-]+)+$/.test(token);
}

/** Hard (the address is gone) or soft (it may pass another day), as Sisimai and Mailman tell them apart. */
export function isHardReason(reason: BounceReason, status?: string, text?: string): boolean {
  if (HARD.has(reason)) return true;
  if (reason === "notaccept") {
    // a null MX or a host that refuses all mail is permanent unless the server says to retry (4xx)
    const cls = status?.[0] ?? /(?:^|\D)([45])\d\d(?:\D|$)/.exec(text ?? "")?.[1];
    return cls !== "4";
  }
  return false;
}

/**
 * One SMTP reply our own delivery got ("550 5.1.1 <a@b>: Recipient address rejected"): its reason,
 * and whether that makes the bounce hard, by the same rules as a notice's words.
 */
export function classifyReply(text: string): { reason: BounceReason; hard: boolean } {
  const status = findStatus(text);
  const reason = classifyReason({ text, status });
  return { reason, hard: isHardReason(reason, status, text) };
}
