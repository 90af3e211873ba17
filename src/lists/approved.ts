/**
 * `Approved: PASSWORD` on a post (Mailman's pre-approval): a moderator's post carrying the list's
 * moderator password in an `Approved:` (or `Approve:`) header field, or as the first non-blank line of
 * a plain-text body, skips the hold checks. Found here on the raw bytes, with the same linear header
 * scan as the checks; whether the password is right is passwords.ts's business.
 *
 * The header field is always removed before the post goes anywhere (a member who types the password
 * into a header must not publish it to the list, right or wrong); the body line only when the password
 * is right (otherwise it is just text).
 */
import { headerFields, splitHeader } from "./message.js";

export interface Approval {
  password: string;
  where: "header" | "body";
  /** the message without the password's header fields (and without the body line, for "body") */
  stripped: Buffer;
}

const NAMES = new Set(["approved", "approve"]);
/** `Approved: pw` / `Approve: pw` as a body line (anchored, no nested quantifiers: linear). */
const BODY_LINE = /^approved?:[ \t]*(\S.*)$/i;
/** only this much of the body is looked at for the line */
const BODY_SCAN = 4096;

/** The message without any Approved/Approve header field; the same Buffer when it has none. */
export function stripApprovedHeaders(raw: Buffer): Buffer {
  const split = splitHeader(raw);
  if (!split) return raw;
  const drop = headerFields(split.header).filter((f) => NAMES.has(f.name.toLowerCase()));
  if (drop.length === 0) return raw;
  const parts: Buffer[] = [];
  let pos = 0;
  for (const f of drop) {
    parts.push(raw.subarray(pos, f.start));
    pos = f.end;
  }
  parts.push(raw.subarray(pos));
  return Buffer.concat(parts);
}

/**
 * The password a post carries, where, and the post without it; null when it carries none. The header
 * field wins over a body line. The body is read only when it is a single plain-text part as sent
 * (no multipart, no quoted-printable or base64 transfer encoding).
 */
export function findApproval(raw: Buffer): Approval | null {
  const split = splitHeader(raw);
  if (!split) return null;
  const fields = headerFields(split.header);
  const field = fields.find((f) => NAMES.has(f.name.toLowerCase()));
  if (field) {
    const password = Buffer.from(field.value, "latin1").toString("utf8");
    return password === "" ? null : { password, where: "header", stripped: stripApprovedHeaders(raw) };
  }
  const type =
    fields.find((f) => f.name.toLowerCase() === "content-type")?.value.toLowerCase() ?? "text/plain";
  const cte = fields.find((f) => f.name.toLowerCase() === "content-transfer-encoding")?.value.toLowerCase();
  if (!type.trimStart().startsWith("text/plain")) return null;
  if (cte !== undefined && !["7bit", "8bit", "binary"].includes(cte.trim())) return null;
  // the first non-blank line of the body
  const body = split.body;
  const scan = body.subarray(0, BODY_SCAN);
  let start = 0;
  while (start < scan.length) {
    const nl = scan.indexOf(0x0a, start);
    const end = nl === -1 ? scan.length : nl;
    const line = scan.toString("utf8", start, end).replace(/\r$/, "");
    if (line.trim() === "") {
      if (nl === -1) return null;
      start = nl + 1;
      continue;
    }
    const m = BODY_LINE.exec(line.trim());
    if (!m?.[1]) return null;
    const cut = split.bodyStart + start;
    const next = split.bodyStart + (nl === -1 ? scan.length : nl + 1);
    return {
      password: m[1].trim(),
      where: "body",
      stripped: Buffer.concat([raw.subarray(0, cut), raw.subarray(next)]),
    };
  }
  return null;
}
