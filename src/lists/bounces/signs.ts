/**
 * Header signs of what a message is: machine-made (a mail-system sender, a bounce subject, a null
 * Return-Path, X-Failed-Recipients, Auto-Submitted) or an automatic reply (RFC 3834 Auto-Submitted:
 * auto-replied from a person's address, X-Autoreply, Precedence: auto_reply, vacation subjects).
 */
import { sanitize } from "./address.js";
import { decodeHeaderText } from "../header-text.js";
import { header, type HeaderField } from "./mime.js";

const SYSTEM_SENDER =
  /mailer-daemon|post_?master|mail delivery|mail system|mail administrator|system administrator|mailer|no-?reply/i;
const BOUNCE_SUBJECT =
  /undeliver|non-?deliver|delivery (?:status|failure|failed|notification|report|problem|has failed)|returned mail|failure notice|mail delivery|delayed mail|not (?:be )?delivered|could not (?:be )?deliver|warning: message .* delayed/i;
const REPLY_PREFIX = /^\s*(?:re|fwd?|aw|wg|tr|sv|vs|rv)(?:\s*\[\d+\])?\s*:/i;
const AUTO_REPLY_SUBJECT =
  /^\s*(?:out of (?:the )?office|auto(?:matic)?[- ]?(?:reply|response)|auto:|on vacation|vacation|away from (?:the )?office|abwesenheit|r[ée]ponse automatique|respuesta autom[áa]tica)/i;

export function subjectOf(h: readonly HeaderField[]): string {
  return sanitize(decodeHeaderText(header(h, "subject") ?? ""), 300);
}

function systemSender(h: readonly HeaderField[]): boolean {
  return (
    SYSTEM_SENDER.test(decodeHeaderText(header(h, "from") ?? "")) ||
    /^<\s*(?:MAILER-DAEMON[^>]*)?>$/i.test((header(h, "return-path") ?? "").trim())
  );
}

function bounceSubject(h: readonly HeaderField[]): boolean {
  const s = subjectOf(h);
  return !REPLY_PREFIX.test(s) && BOUNCE_SUBJECT.test(s);
}

/** Signs of a machine-made notice rather than a person's message. */
export function machineMade(h: readonly HeaderField[]): boolean {
  const autoSubmitted = (header(h, "auto-submitted") ?? "").trim().toLowerCase();
  return (
    systemSender(h) ||
    bounceSubject(h) ||
    header(h, "x-failed-recipients") !== undefined ||
    (autoSubmitted !== "" && !autoSubmitted.startsWith("no"))
  );
}

/** Why the message is an automatic reply (vacation, out-of-office), or undefined when it is not one. */
export function autoReplySign(h: readonly HeaderField[]): string | undefined {
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
