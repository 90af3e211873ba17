/**
 * Bounces from Unix MTAs that send (or sent) no delivery-status part: qmail (QSBMF), Exim's text
 * bounces and delay warnings, and Postfix's text-only reports (before 2.0, or a DSN part lost on the
 * way). Each detector starts from the MTA's fixed intro sentence and reads only the report that
 * follows it, never the returned message after it.
 */
import { cleanAddress } from "./address.js";
import {
  MAX_SECTION_LINES,
  finding,
  findLine,
  isBlank,
  isIndented,
  recipientParagraphs,
  type TextFinding,
  type TextMatch,
} from "./text-util.js";

/**
 * qmail-send's bounce: "Hi. This is the qmail-send program at HOST." It only reports final failures
 * ("This is a permanent error; I've given up"), so every recipient is permanent; the reason often
 * carries a status as "(#5.1.1)".
 */
export function detectQmail(lines: readonly string[]): TextMatch | null {
  const intro = findLine(lines, /^Hi\. This is the qmail(?:-send)? program at /);
  if (intro < 0) return null;
  return {
    format: "qmail",
    findings: recipientParagraphs(lines, intro, "permanent", "qmail recipient paragraph"),
  };
}

const EXIM_INTRO = /^This message was created automatically by mail delivery software/;
const EXIM_FAILED = /address(?:\(es\)|es)? failed:\s*$/i;
const EXIM_DELAYED = /address(?:\(es\)|es)? to which the message has not yet been delivered (?:is|are):\s*$/i;

/**
 * Exim: "This message was created automatically by mail delivery software." A failure lists the
 * addresses after "The following address(es) failed:", a delay warning after "The address(es) to
 * which the message has not yet been delivered is/are:". Addresses are indented two spaces, their
 * reasons four; "(generated from alias@...)" names the address the sender used, which we prefer.
 */
export function detectExim(lines: readonly string[]): TextMatch | null {
  const intro = findLine(lines, EXIM_INTRO);
  if (intro < 0) return null;
  const failedAt = findLine(lines, EXIM_FAILED, intro);
  const delayedAt = findLine(lines, EXIM_DELAYED, intro);
  const start = failedAt >= 0 ? failedAt : delayedAt;
  if (start < 0)
    return { format: "exim", findings: [], reason: "an Exim notice that lists no failed or delayed address" };
  const kind = failedAt >= 0 ? "permanent" : "temporary";
  const out: TextFinding[] = [];
  let cur: { address: string; diag: string[]; source: string } | null = null;
  const close = (): void => {
    if (cur) out.push(finding(cur.address, kind, cur.source, cur.diag));
    cur = null;
  };
  for (let i = start + 1, end = Math.min(lines.length, start + 1 + MAX_SECTION_LINES); i < end; i++) {
    const line = lines[i] as string;
    if (isBlank(line)) continue;
    if (!isIndented(line)) break; // "------ This is a copy of the message", "No action is required ..."
    const addressLine = /^ {1,2}(\S+)/.exec(line);
    if (addressLine) {
      close();
      const token = addressLine[1] as string;
      const address = cleanAddress(token.endsWith(":") ? token.slice(0, -1) : token);
      // pipes and files ("pipe to |/usr/bin/x", "save to /var/mail/x") are no member addresses
      if (address !== undefined) {
        const rest = line.slice(addressLine[0].length).replace(/^[\s:]+/, "");
        cur = { address, diag: rest ? [rest] : [], source: "exim failed-address list" };
      }
      continue;
    }
    const c = cur as { address: string; diag: string[]; source: string } | null;
    if (!c) continue;
    const generated = /^\s*\(generated from (.+?)\)\s*$/.exec(line);
    const original = generated ? cleanAddress(generated[1]) : undefined;
    if (original !== undefined) {
      c.address = original;
      c.source = "exim failed-address list (generated from)";
    } else {
      c.diag.push(line.trim());
    }
  }
  close();
  return { format: "exim", findings: out };
}

const POSTFIX_INTRO = /^This is the (?:[\w .-]{1,40} program|mail system) at host \S+/;
const POSTFIX_STOP =
  /^\s*-{2,}\s*(?:Undelivered message|Original message|Delivery error report unavailable)/i;

/**
 * Postfix's text: "This is the Postfix program at host HOST." (old) or "This is the mail system at
 * host HOST." (2.3 and later; with a DSN part the RFC 3464 reader has already answered). One line per
 * recipient, `<address>: reason`, continued on indented lines; "(expanded from <alias>)" names the
 * address the sender used, which we prefer. "THIS IS A WARNING ONLY" makes it a delay notice.
 */
export function detectPostfixText(lines: readonly string[]): TextMatch | null {
  const intro = findLine(lines, POSTFIX_INTRO);
  if (intro < 0) return null;
  if (findLine(lines, /^Your message was successfully delivered/i, intro) >= 0) {
    return { format: "postfix-old", findings: [], reason: "a Postfix success notice, not a bounce" };
  }
  const kind = findLine(lines, /THIS IS A WARNING ONLY/, intro) >= 0 ? "temporary" : "permanent";
  const out: TextFinding[] = [];
  let cur: { address: string; diag: string[]; source: string } | null = null;
  const close = (): void => {
    if (cur) out.push(finding(cur.address, kind, cur.source, cur.diag));
    cur = null;
  };
  for (let i = intro + 1, end = Math.min(lines.length, intro + 1 + MAX_SECTION_LINES * 2); i < end; i++) {
    const line = lines[i] as string;
    if (POSTFIX_STOP.test(line)) break;
    const m = /^<([^<>\s]+)>(?:\s+\(expanded from <([^<>\s]+)>\))?:(.*)$/.exec(line);
    if (m) {
      close();
      const expandedFrom = cleanAddress(m[2]);
      const address = expandedFrom ?? cleanAddress(m[1]);
      if (address !== undefined) {
        const source =
          expandedFrom !== undefined ? "postfix report line (expanded from)" : "postfix report line";
        const said = (m[3] ?? "").trim();
        cur = { address, diag: said ? [said] : [], source };
      }
      continue;
    }
    const c = cur as { address: string; diag: string[]; source: string } | null;
    if (c && isIndented(line) && !isBlank(line)) c.diag.push(line.trim());
    else close();
  }
  close();
  return { format: "postfix-old", findings: out };
}
