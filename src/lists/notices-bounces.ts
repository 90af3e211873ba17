/**
 * The notices of bounce processing beyond disabling (notice-texts.ts has those): an unrecognised
 * bounce forwarded whole to the owners or the site owner (the bounce attached as message/rfc822), the
 * hourly digest of the ones past the forwarding budget, and the probe a member gets before being
 * disabled (verp_probes). Forwards and digests go out with the null envelope sender, so that they
 * can never bounce back into the list's -bounces address and be forwarded again.
 */
import { randomBytes } from "node:crypto";
import { listAddresses } from "./headers.js";
import { notice, type Notice } from "./notices.js";
import type { ListConfig } from "./schema.js";
import type { DigestItem } from "./state-shape.js";

type List = Pick<ListConfig, "name" | "domain" | "address" | "owners">;

/** Bounces larger than this are attached truncated (as bytes, not as a message). */
export const FORWARD_MAX_BYTES = 256 * 1024;

/** One printable line of at most `max` characters: what a header or a stranger's text may show. */
export function oneLine(s: string, max = 200): string {
  const t = s
    .slice(0, max * 4)
    // eslint-disable-next-line no-control-regex -- removing control characters is the point
    .replace(/[\x00-\x1f\x7f]+/g, " ")
    .trim();
  return t.length > max ? t.slice(0, max - 3) + "..." : t;
}

function attachment(raw: Buffer): { headers: string[]; body: Buffer } {
  if (raw.length > FORWARD_MAX_BYTES) {
    const cut = raw.subarray(0, FORWARD_MAX_BYTES);
    return {
      headers: [
        'Content-Type: application/octet-stream; name="bounce-truncated.eml"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="bounce-truncated.eml"',
      ],
      body: Buffer.from((cut.toString("base64").match(/.{1,76}/g) ?? []).join("\r\n"), "latin1"),
    };
  }
  // line ends made CRLF (a lone LF is common in mail handed over by a pipe); linear
  const text = raw.toString("latin1").replace(/\r?\n/g, "\r\n");
  const clean = !text.includes("\0") && text.split("\r\n").every((l) => l.length <= 998);
  if (!clean) {
    return {
      headers: [
        'Content-Type: application/octet-stream; name="bounce.eml"',
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="bounce.eml"',
      ],
      body: Buffer.from((raw.toString("base64").match(/.{1,76}/g) ?? []).join("\r\n"), "latin1"),
    };
  }
  const eight = [...Buffer.from(text, "latin1")].some((b) => b >= 0x80);
  return {
    headers: ["Content-Type: message/rfc822", `Content-Transfer-Encoding: ${eight ? "8bit" : "7bit"}`],
    body: Buffer.from(text.endsWith("\r\n") ? text : text + "\r\n", "latin1"),
  };
}

/** `n` (a composed text/plain notice) as multipart/mixed with `raw` attached after its text. */
function withAttachment(n: Notice, raw: Buffer): Notice {
  const msg = n.message;
  const end = msg.indexOf("\r\n\r\n");
  const head = msg.toString("latin1", 0, end).split("\r\n");
  const textBody = msg.subarray(end + 4);
  const partHeaders = head.filter((l) => /^content-(?:type|transfer-encoding):/i.test(l));
  const rest = head.filter((l) => !/^content-(?:type|transfer-encoding):/i.test(l));
  const att = attachment(raw);
  let boundary = `=_qrunner_${randomBytes(12).toString("hex")}`;
  while (att.body.includes(boundary)) boundary = `=_qrunner_${randomBytes(12).toString("hex")}`;
  const out = Buffer.concat([
    Buffer.from(
      [
        ...rest,
        `Content-Type: multipart/mixed; boundary="${boundary}"`,
        "",
        `--${boundary}`,
        ...partHeaders,
        "",
        "",
      ].join("\r\n"),
      "latin1",
    ),
    textBody,
    Buffer.from([`--${boundary}`, ...att.headers, "", ""].join("\r\n"), "latin1"),
    att.body,
    Buffer.from(`\r\n--${boundary}--\r\n`, "latin1"),
  ]);
  return { ...n, message: out };
}

export interface UnrecognisedRef {
  from: string;
  subject: string;
  size: number;
  reason: string;
}

/** An unrecognised bounce, forwarded whole (attached) to `to`. */
export function unrecognisedForward(
  list: List,
  to: readonly string[],
  b: UnrecognisedRef,
  raw: Buffer,
): Notice {
  const a = listAddresses(list);
  const n = notice(list, {
    from: a.owner,
    to,
    subject: `${list.address}: unrecognised bounce`,
    autoSubmitted: "auto-generated",
    text:
      `A message reached ${a.bounces} that qrunner could not read as a bounce\n` +
      `(no member could be found in it). It is attached; nothing was scored.\n\n` +
      `  from:    ${oneLine(b.from)}\n  subject: ${oneLine(b.subject)}\n  size:    ${b.size} bytes\n` +
      `  reason:  ${oneLine(b.reason)}\n\n` +
      `At most a few are forwarded an hour; the others are listed in one digest an hour.\n`,
  });
  return withAttachment({ ...n, sender: "" }, raw);
}

/** The hourly digest of the unrecognised bounces past the forwarding budget. */
export function unrecognisedDigest(
  list: List,
  to: readonly string[],
  d: { since: number; count: number; items: readonly DigestItem[] },
): Notice {
  const a = listAddresses(list);
  const lines = d.items
    .map(
      (i) =>
        `- ${new Date(i.at).toISOString()}  ${i.size} bytes\n    from:    ${oneLine(i.from)}\n` +
        `    subject: ${oneLine(i.subject)}\n    reason:  ${oneLine(i.reason)}\n`,
    )
    .join("");
  const more = d.count > d.items.length ? `\n... and ${d.count - d.items.length} more not listed.\n` : "";
  const n = notice(list, {
    from: a.owner,
    to,
    subject: `${list.address}: ${d.count} unrecognised bounce(s) since ${new Date(d.since).toISOString()}`,
    autoSubmitted: "auto-generated",
    text:
      `${d.count} message(s) reached ${a.bounces} in the hour from ${new Date(d.since).toISOString()}\n` +
      `that qrunner could not read as bounces, beyond the few forwarded whole.\n` +
      `They were not kept; nothing was scored.\n\n${lines}${more}`,
  });
  return { ...n, sender: "" };
}

/** The probe a member gets at the bounce threshold (verp_probes); `sender` is its signed probe VERP address. */
export function bounceProbe(list: List, member: string, sender: string, score: number): Notice {
  const a = listAddresses(list);
  const n = notice(list, {
    from: a.owner,
    to: member,
    subject: `${list.address}: is your address still working?`,
    autoSubmitted: "auto-generated",
    text:
      `Mail from ${list.address} to ${member} has bounced (score ${score}).\n\n` +
      `This message checks whether your address works. If it reaches you, there is\n` +
      `nothing to do: your delivery stays enabled. If it bounces too, delivery to you\n` +
      `will be disabled. The list owners are at ${a.owner}.\n`,
  });
  return { ...n, sender };
}
