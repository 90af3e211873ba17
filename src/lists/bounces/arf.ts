/**
 * Feedback-loop complaints (RFC 5965 ARF, and Hotmail's older JMRP form): a recipient pressed "this
 * is spam", or a DMARC failure report. A complaint is not a dead address: the caller counts and logs
 * it per list, never scores it as a bounce.
 *
 * Recognised by a `message/feedback-report` part (the report's Feedback-Type, Original-Rcpt-To), or
 * by a returned message carrying `X-HmXmrOriginalRecipient` (Hotmail's JMRP). The complained-about
 * address is the report's Original-Rcpt-To, else the returned message's To (or its JMRP header).
 */
import { cleanAddress, sanitize } from "./address.js";
import { parseBlocks } from "./dsn.js";
import { partText } from "./decode.js";
import { header, parseHeaderBlock, type MimePart } from "./mime.js";

export interface Complaint {
  /** the complained-about recipient, canonical, when the report names one */
  address?: string;
  /** RFC 5965 Feedback-Type, lowercased: abuse, fraud, auth-failure, not-spam, virus, other */
  feedbackType?: string;
}

/** The headers of a returned message part (message/rfc822 or text/rfc822-headers), or []. */
function returnedHeaders(p: MimePart): ReturnType<typeof parseHeaderBlock>["fields"] {
  return parseHeaderBlock(partText(p).slice(0, 64 * 1024)).fields;
}

function firstAddress(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  for (const piece of value.split(",")) {
    const lt = piece.indexOf("<");
    const gt = piece.indexOf(">", lt + 1);
    const a = cleanAddress(lt >= 0 && gt > lt ? piece.slice(lt + 1, gt) : piece);
    if (a !== undefined) return a;
  }
  return undefined;
}

/** The complaint a message is, or undefined when it is none. */
export function findComplaint(root: MimePart, parts: readonly MimePart[]): Complaint | undefined {
  const report = parts.find((p) => p.type === "message/feedback-report");
  const returned = parts.find((p) => p.type === "message/rfc822" || p.type === "text/rfc822-headers");
  const returnedFields = returned === undefined ? [] : returnedHeaders(returned);
  const jmrp = header(returnedFields, "x-hmxmroriginalrecipient");
  const isArf =
    report !== undefined ||
    (root.type === "multipart/report" &&
      (root.params["report-type"] ?? "").toLowerCase() === "feedback-report");
  if (!isArf && jmrp === undefined) return undefined;
  const c: Complaint = {};
  if (report !== undefined) {
    // the first value of each field wins (a repeated Original-Rcpt-To starts a new block)
    const fields = new Map<string, string>();
    for (const block of parseBlocks(partText(report)))
      for (const [name, value] of block) if (!fields.has(name)) fields.set(name, value);
    const type = fields.get("feedback-type");
    if (type !== undefined && type !== "") c.feedbackType = sanitize(type.toLowerCase(), 40);
    const rcpt = cleanAddress(fields.get("original-rcpt-to"));
    if (rcpt !== undefined) c.address = rcpt;
  } else {
    c.feedbackType = "abuse";
  }
  const fallback = firstAddress(jmrp) ?? firstAddress(header(returnedFields, "to"));
  if (c.address === undefined && fallback !== undefined) c.address = fallback;
  return c;
}
