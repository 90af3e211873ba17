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

// ---- ready-made notices -------------------------------------------------------------------------

type List = Pick<
  ListConfig,
  "name" | "domain" | "address" | "owners" | "max_size" | "hold_expires" | "confirm_expires"
>;

/** How a poster's subject is shown in a notice body: one line, bounded. */
function shown(subject: string | undefined): string {
  const s = (subject ?? "").replace(/[\r\n\t\0]+/g, " ").trim();
  if (s === "") return "(no subject)";
  return s.length > 120 ? s.slice(0, 117) + "..." : s;
}

function days(ms: number): string {
  const d = ms / 86_400_000;
  return d >= 1 ? `${+d.toFixed(1)} day${d === 1 ? "" : "s"}` : `${Math.round(ms / 3_600_000)} hours`;
}

function withReply(messageId: string | undefined): { inReplyTo?: string } {
  return messageId === undefined ? {} : { inReplyTo: messageId };
}

export interface PostRef {
  poster: string;
  /** the post's Subject, decoded */
  subject?: string;
  messageId?: string;
}

export function rejectedForSize(list: List, post: PostRef & { size: number }): Notice {
  const a = listAddresses(list);
  return notice(list, {
    from: a.owner,
    to: post.poster,
    subject: `Your message to ${list.address} was rejected: too large`,
    text:
      `Your message "${shown(post.subject)}" is ${post.size} bytes, more than the ${list.max_size} bytes\n` +
      `that ${list.address} accepts. It was not distributed.\n\n` +
      `Send a smaller message (a link instead of an attachment), or write to the list owners\nat ${a.owner}.\n`,
    ...withReply(post.messageId),
  });
}

export function rejectedNonmember(list: List, post: PostRef): Notice {
  const a = listAddresses(list);
  return notice(list, {
    from: a.owner,
    to: post.poster,
    subject: `Your message to ${list.address} was rejected`,
    text:
      `Your message "${shown(post.subject)}" was not distributed: only members may post to\n` +
      `${list.address}, and ${post.poster} is not a member.\n\n` +
      `To join, send a message to ${a.join}. The list owners are at ${a.owner}.\n`,
    ...withReply(post.messageId),
  });
}

/** Commands shown to owners for a held post. The CLI names them; override to match your setup. */
export interface ModerationCommands {
  approve: string;
  reject: string;
  discard: string;
}

/** The moderation commands of `qrunner` (src/cli/moderation.ts): held ids are unique across lists. */
export function defaultModerationCommands(id: string): ModerationCommands {
  return {
    approve: `qrunner approve ${id}`,
    reject: `qrunner reject ${id} --reason="..."`,
    discard: `qrunner discard ${id}`,
  };
}

export function heldForModeration(
  list: List,
  post: PostRef & { id: string; reason: string; size?: number; commands?: ModerationCommands },
): Notice {
  const a = listAddresses(list);
  const c = post.commands ?? defaultModerationCommands(post.id);
  return notice(list, {
    from: a.owner,
    to: list.owners,
    subject: `${list.address}: post from ${post.poster} held for approval (${post.id})`,
    autoSubmitted: "auto-generated",
    text:
      `A post to ${list.address} is held for your approval.\n\n` +
      `  held id: ${post.id}\n  from:    ${post.poster}\n  subject: ${shown(post.subject)}\n` +
      (post.size !== undefined ? `  size:    ${post.size} bytes\n` : "") +
      `  reason:  ${post.reason}\n\n` +
      `To distribute it:\n  ${c.approve}\nTo reject it (the poster is told):\n  ${c.reject}\n` +
      `To drop it silently:\n  ${c.discard}\n\n` +
      `Held posts are discarded after ${days(list.hold_expires)}.\n`,
  });
}

export function heldNoticeToPoster(list: List, post: PostRef): Notice {
  const a = listAddresses(list);
  return notice(list, {
    from: a.owner,
    to: post.poster,
    subject: `Your message to ${list.address} awaits approval`,
    text:
      `Your message "${shown(post.subject)}" to ${list.address} is held until a list owner\n` +
      `approves it. You do not need to do anything; if it is not approved within\n` +
      `${days(list.hold_expires)} it is discarded. The list owners are at ${a.owner}.\n`,
    ...withReply(post.messageId),
  });
}

export function rejectedByModerator(list: List, post: PostRef & { reason?: string }): Notice {
  const a = listAddresses(list);
  return notice(list, {
    from: a.owner,
    to: post.poster,
    subject: `Your message to ${list.address} was rejected`,
    text:
      `A list owner refused your message "${shown(post.subject)}" to ${list.address}.\n` +
      `Reason: ${shown(post.reason ?? "the list's moderator refused it")}\n\n` +
      `The list owners are at ${a.owner}.\n`,
    ...withReply(post.messageId),
  });
}

export interface BounceDisable {
  member: string;
  score: number;
  /** the last bounce's diagnostic, one line */
  reason?: string;
}

export function bounceDisabledMember(list: List, b: BounceDisable): Notice {
  const a = listAddresses(list);
  return notice(list, {
    from: a.owner,
    to: b.member,
    subject: `Delivery from ${list.address} to you is disabled`,
    text:
      `Mail from ${list.address} to ${b.member} has bounced too often (score ${b.score}),\n` +
      `so delivery to you is disabled. You are still a member.\n\n` +
      `To get list mail again, send "join" to ${a.request} and confirm,\n` +
      `or write to the list owners at ${a.owner}.\n`,
  });
}

export function bounceDisabledOwners(list: List, b: BounceDisable): Notice {
  const a = listAddresses(list);
  return notice(list, {
    from: a.owner,
    to: list.owners,
    subject: `${list.address}: delivery to ${b.member} disabled after bounces`,
    text:
      `Delivery to ${b.member} on ${list.address} is disabled: bounce score ${b.score}.\n` +
      (b.reason ? `Last bounce: ${shown(b.reason)}\n` : "") +
      `\nSee \`qrunner members ${list.address}\` for every member's state.\n`,
  });
}

/** Backoff reached max_age for some recipients of a message: the owners are told once. */
export function deliveryGaveUp(
  list: List,
  g: {
    recipients: readonly string[];
    ageMs: number;
    lastError: string;
    subject?: string;
    messageId?: string;
  },
): Notice {
  const a = listAddresses(list);
  const shownRcpts = g.recipients
    .slice(0, 20)
    .map((r) => `  ${r}\n`)
    .join("");
  const more = g.recipients.length > 20 ? `  ... and ${g.recipients.length - 20} more\n` : "";
  return notice(list, {
    from: a.owner,
    to: list.owners,
    subject: `${list.address}: delivery given up for ${g.recipients.length} recipient(s)`,
    text:
      `qrunner gave up delivering a message after ${days(g.ageMs)} of retries.\n\n` +
      `  subject:    ${shown(g.subject)}\n` +
      (g.messageId ? `  message-id: ${shown(g.messageId)}\n` : "") +
      `  last error: ${shown(g.lastError)}\n\nRecipients:\n${shownRcpts}${more}`,
  });
}

export function helpText(list: List): string {
  const a = listAddresses(list);
  return (
    `Commands for ${list.address}, one a line in the Subject or the body of a message\n` +
    `to ${a.request}:\n\n` +
    `  help           this text\n  join           subscribe (also: subscribe; or mail ${a.join})\n` +
    `  leave          unsubscribe (also: unsubscribe; or mail ${a.leave})\n` +
    `  confirm TOKEN  confirm a join or leave request\n  echo TEXT      reply with TEXT\n` +
    `  end            stop reading commands (a signature line "-- " does too)\n\n` +
    `The list owners are at ${a.owner}.\n`
  );
}

export function commandReply(
  list: List,
  r: { to: string; results: readonly { line: string; reply: string }[]; ignored: number; inReplyTo?: string },
): Notice {
  const a = listAddresses(list);
  const lines = r.results.map((x) => `> ${shown(x.line)}\n${x.reply.trimEnd()}\n`).join("\n");
  const ignored = r.ignored > 0 ? `\n${r.ignored} more line(s) were not read as commands.\n` : "";
  return notice(list, {
    from: a.request,
    to: r.to,
    subject: `Results of your commands to ${a.request}`,
    text: `${lines || "No commands were found in your message.\n"}${ignored}\nFor help, send "help" to ${a.request}.\n`,
    ...withReply(r.inReplyTo),
  });
}

/** Asks `to` to confirm a join or leave; replying keeps "confirm TOKEN" in the Subject. */
export function confirmRequest(
  list: List,
  c: { to: string; token: string; action: "join" | "leave"; inReplyTo?: string },
): Notice {
  const a = listAddresses(list);
  if (!/^[A-Za-z0-9_-]{8,128}$/.test(c.token)) throw new HeaderInjectionError("confirmation token", c.token);
  const what = c.action === "join" ? `subscribe ${c.to} to` : `unsubscribe ${c.to} from`;
  return notice(list, {
    from: a.request,
    to: c.to,
    subject: `confirm ${c.token}`,
    text:
      `Someone (hopefully you) asked to ${what} ${list.address}.\n\n` +
      `To confirm, reply to this message keeping the Subject, or send a message to\n` +
      `${a.request} with this line:\n\n  confirm ${c.token}\n\n` +
      `If you did not ask for this, ignore this message; the request expires in ${days(list.confirm_expires)}.\n`,
    ...withReply(c.inReplyTo),
  });
}
