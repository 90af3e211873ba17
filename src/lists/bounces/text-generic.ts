/**
 * The last text detector, for the many MTAs and gateways whose layouts have no detector of their own
 * (V5 Sendmail transcripts, Lotus Notes, IMail, m-FILTER, InterScan, au/EZweb, Biglobe, X.400
 * gateways, ...): what they share is a notice that names each failed recipient somewhere before the
 * returned message, near the server's words. This detector
 *
 * 1. cuts the notice where the returned message starts (a "----- Original message -----" style line,
 *    or a `Received:` / `Return-Path:` header line at the margin);
 * 2. takes the addresses written there, except the notice's own and the sender's (From, To,
 *    Reply-To, Return-Path of the notice and of the returned message), addresses written after
 *    "from", "sender" or "contact" (the sender and help desks), and mail-system addresses;
 * 3. keeps an address only when its line or a neighbour carries a failure sign (a status code, a
 *    4xx/5xx reply, a known reason, words such as "failed", "unknown", "rejected"), or when it stands
 *    alone on its line;
 * 4. when the notice names nobody but says a delivery failed, falls back to the returned message's
 *    single To address, as Sisimai does for notices that only quote the transcript.
 *
 * Used only on machine-made messages (the caller checks) and only after every specific layout failed.
 */
import { findAddressesAt, findStatus } from "./address.js";
import { reasonFromText } from "./reason.js";
import { finding, isBlank, type TextFinding, type TextMatch } from "./text-util.js";

export interface GenericContext {
  /** lowercased addresses that are the notice's or the sender's own, never a failed recipient */
  exclude: ReadonlySet<string>;
  /** the returned message's To addresses (canonical), when it was found */
  returnedTo: readonly string[];
  /** the notice's Subject, decoded ("Warning: message delayed") */
  subject?: string;
}

const MAX_NOTICE_LINES = 300;

/** Phrases that, on a short or decorated line, say the returned message starts here. */
const RETURNED_MARKERS = [
  "original message",
  "unsent message",
  "returned message",
  "copy of the message",
  "copy of your message",
  "copy of the original",
  "message follows",
  "below this line",
  "header of the original",
  "headers of the original",
  "original mail",
  "undelivered message",
  "message header follows",
  "this is a copy",
  "original header",
  "end of message",
  "returned mail follows",
];

const HEADER_START = ["received:", "return-path:", "x-original-to:", "delivered-to:", "dkim-signature:"];

function isReturnedStart(line: string): boolean {
  const lower = line.toLowerCase();
  for (const h of HEADER_START) if (lower.startsWith(h)) return true;
  const t = lower.trim();
  if (t === "" || t.includes("was received") || t.includes("received at")) return false;
  const decorated = /^[-=*_[<#>]/.test(t);
  // undecorated, only a short line that announces what follows ("Original message follows.",
  // "Below is a copy of the original message:"), not a sentence mentioning "the returned message"
  if (!decorated && (t.length > 60 || !(t.endsWith(":") || t.includes("follow")))) return false;
  if (t.includes("headers follow")) return true;
  for (const m of RETURNED_MARKERS) if (t.includes(m)) return true;
  return false;
}

/** The notice's own lines: up to where the returned message starts. */
export function noticeRegion(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length && out.length < MAX_NOTICE_LINES; i++) {
    const line = lines[i] as string;
    if (isReturnedStart(line)) break;
    out.push(line);
  }
  return out;
}

/** Words that, before an address on its line, make it the sender or a help desk rather than a recipient. */
const NOT_RECIPIENT_BEFORE = [
  "from",
  "sender",
  "reply-to",
  "reply to",
  "return-path",
  "contact",
  "write to",
  "send mail to",
  "email to",
  "e-mail to",
  "questions",
  "postmaster",
  "sent by",
  "helo",
  "ehlo",
];

const SYSTEM_LOCAL = /^(?:mailer-daemon|mail-daemon|maildaemon|mailerdaemon)$/i;

/** Failure words on a line near an address. */
const FAILURE_WORDS = [
  "fail",
  "error",
  "undeliver",
  "not deliver",
  "could not",
  "couldn't",
  "cannot",
  "can't",
  "unable",
  "reject",
  "refused",
  "unknown",
  "invalid",
  "denied",
  "not found",
  "does not exist",
  "no such",
  "returned",
  "problem",
  "bounce",
  "deferred",
  "disabled",
  "expired",
  "full",
  "quota",
  "blocked",
  "rcpt to",
  "recipient",
  "following address",
  "delivery",
];

function failureSign(line: string | undefined): boolean {
  if (line === undefined || line.trim() === "") return false;
  if (findStatus(line) !== undefined) return true;
  if (/(?:^|[^\d.])[45]\d\d(?:[ \-.,:;)]|$)/.test(line)) return true;
  const lower = line.toLowerCase();
  for (const w of FAILURE_WORDS) if (lower.includes(w)) return true;
  return reasonFromText(line) !== undefined;
}

/** Whether the notice as a whole says that a delivery failed (for the returned-To fallback). */
function noticeSaysFailure(region: readonly string[]): boolean {
  let n = 0;
  for (const l of region) if (failureSign(l) && ++n >= 1) return true;
  return false;
}

/** A notice that only warns: the MTA is still trying ("will retry", "THIS IS A WARNING ONLY"). */
const DELAY_WORDS = [
  "warning only",
  "will retry",
  "will keep trying",
  "will continue trying",
  "still trying",
  "still being retried",
  "not yet been delivered",
  "has been delayed",
  "delivery is delayed",
  "delivery delayed",
  "temporarily deferred",
];
const FINAL_WORDS = ["permanent", "gave up", "giving up", "will not be retried", "no further"];

function isDelayNotice(region: readonly string[], subject: string): boolean {
  const text = (subject + "\n" + region.slice(0, 60).join("\n")).toLowerCase();
  return DELAY_WORDS.some((w) => text.includes(w)) && !FINAL_WORDS.some((w) => text.includes(w));
}

/** A line that is one whole SMTP reply: a code and a space at the margin (not "550-", a continued one). */
const REPLY_LINE = /^[245]\d\d /;

export function detectGeneric(lines: readonly string[], ctx: GenericContext): TextMatch | null {
  const region = noticeRegion(lines);
  const kind = isDelayNotice(region, ctx.subject ?? "") ? "temporary" : "permanent";
  const found = new Map<string, TextFinding>();
  for (let i = 0; i < region.length && found.size < 100; i++) {
    const line = region[i] as string;
    for (const { address, index } of findAddressesAt(line)) {
      const key = address.toLowerCase();
      if (found.has(key) || ctx.exclude.has(key)) continue;
      if (SYSTEM_LOCAL.test(address.slice(0, address.lastIndexOf("@")))) continue;
      const before = line.slice(Math.max(0, index - 40), index).toLowerCase();
      if (NOT_RECIPIENT_BEFORE.some((w) => before.includes(w)) && !before.includes("rcpt")) continue;
      const alone = line.trim().length <= address.length + 4;
      if (!alone && !failureSign(line) && !failureSign(region[i - 1]) && !failureSign(region[i + 1]))
        continue;
      const diag: string[] = [line.trim()];
      // a Sendmail transcript writes one reply per line ("554 <a@b>... Remote protocol error", then
      // "550 b (smtp)... 550 Host unknown" about another host): a reply line ends the one before
      const oneReplyPerLine = REPLY_LINE.test(line);
      for (let k = i + 1; k < region.length && diag.length < 4; k++) {
        const next = region[k] as string;
        if (isBlank(next) || findAddressesAt(next).some((a) => a.address.toLowerCase() !== key)) break;
        if (oneReplyPerLine && REPLY_LINE.test(next)) break;
        diag.push(next.trim());
      }
      // a line that is the address alone: the reason is often the line above ("User not listed ...")
      const above = region[i - 1];
      if (alone && above !== undefined && !isBlank(above) && findAddressesAt(above, 1).length === 0)
        diag.unshift(above.trim());
      found.set(key, finding(address, kind, "address in the notice text", diag));
    }
  }
  if (found.size > 0) return { format: "plain", findings: [...found.values()] };
  const to = ctx.returnedTo.filter((a) => !ctx.exclude.has(a.toLowerCase()));
  if (to.length === 1 && noticeSaysFailure(region)) {
    return {
      format: "plain",
      findings: [finding(to[0] as string, kind, "returned message To", [])],
    };
  }
  return null;
}
