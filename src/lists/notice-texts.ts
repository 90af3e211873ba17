/**
 * The notices qrunner sends, ready-made: rejections, held posts, bounce-disable, give-up, command
 * replies and confirmation requests. Each is composed by `notice()` in notices.ts.
 */
import type { ListConfig } from "./schema.js";
import { HeaderInjectionError, listAddresses } from "./headers.js";
import { notice, type Notice } from "./notices.js";
import { moderatorsOf } from "./addresses.js";

type List = Pick<
  ListConfig,
  "name" | "domain" | "address" | "owners" | "max_size" | "hold_expires" | "confirm_expires"
> &
  Partial<Pick<ListConfig, "moderators">>;

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

/**
 * Tells the owners and moderators a post is held. With `token` (a moderation token, tokens.ts) the
 * notice can be answered: Reply-To is `<list>-request+confirm-TOKEN@` and the Subject `confirm TOKEN`,
 * so a reply whose first line is approve, reject REASON or discard (or an empty reply keeping the
 * Subject: approve) acts on the post once (src/lists/moderation-reply.ts).
 */
export function heldForModeration(
  list: List,
  post: PostRef & {
    id: string;
    reason: string;
    size?: number;
    commands?: ModerationCommands;
    token?: string;
  },
): Notice {
  const a = listAddresses(list);
  const c = post.commands ?? defaultModerationCommands(post.id);
  if (post.token !== undefined && !/^[A-Za-z0-9_-]{20,64}$/.test(post.token))
    throw new HeaderInjectionError("moderation token", post.token);
  const byMail =
    post.token === undefined
      ? ""
      : `To act by mail, reply to this message (it goes to ${confirmAddress(list, post.token)})\n` +
        `with one of these as the first line of your reply:\n` +
        `  approve          distribute the post (an empty reply does too)\n` +
        `  reject REASON    refuse it; the poster is told the reason\n` +
        `  discard          drop it silently\n` +
        `Only replies from the list's owners and moderators are acted on, once.\n\n` +
        `Or on the mail server:\n`;
  return notice(list, {
    from: a.owner,
    to: moderatorsOf(list),
    ...(post.token !== undefined ? { replyTo: confirmAddress(list, post.token) } : {}),
    subject:
      post.token !== undefined
        ? `confirm ${post.token}`
        : `${list.address}: post from ${post.poster} held for approval (${post.id})`,
    autoSubmitted: "auto-generated",
    text:
      `A post to ${list.address} is held for your approval.\n\n` +
      `  held id: ${post.id}\n  from:    ${post.poster}\n  subject: ${shown(post.subject)}\n` +
      (post.size !== undefined ? `  size:    ${post.size} bytes\n` : "") +
      `  reason:  ${post.reason}\n\n` +
      byMail +
      `To distribute it:\n  ${c.approve}\nTo reject it (the poster is told):\n  ${c.reject}\n` +
      `To drop it silently:\n  ${c.discard}\n\n` +
      `Held posts are discarded after ${days(list.hold_expires)}.\n`,
  });
}

/** The address a held-post notice's reply goes to. */
export function confirmAddress(list: Pick<ListConfig, "name" | "domain">, token: string): string {
  return `${list.name}-request+confirm-${token}@${list.domain}`;
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
