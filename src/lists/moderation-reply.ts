/**
 * Moderation by mail: a reply to a held-post notice (sent to `<list>-request+confirm-TOKEN@`, or to
 * -request with the Subject `confirm TOKEN`) acts on that post once, through the moderation service
 * (moderation.ts) the CLI and the web console use. The first line of the reply says what to do:
 * `approve`, `reject REASON` or `discard`; an empty reply keeping the Subject approves.
 *
 * Who may act: the token is the secret, and the reply must also come from one of the list's owners
 * or moderators, both its From: (exactly one address) and its envelope sender: a notice forwarded to a
 * stranger, or a token read over a shoulder, is worth nothing to them. A stranger's reply changes
 * nothing, gets no answer (no backscatter to forged senders) and leaves the token usable. The
 * moderator's answer counts against the list's `max_replies_per_hour` like any command reply.
 */
import { isModerator } from "./addresses.js";
import { extractAddresses } from "./header-addresses.js";
import { getHeader, messageId } from "./message.js";
import { describeResult, moderate, type ModerationAction, type ModerationResult } from "./moderation.js";
import { commandReply } from "./notice-texts.js";
import { queueNotice, type NoticeOrigin, type QueueSource } from "./queue-notice.js";
import { takeReplySlot } from "./replies.js";
import { requestText, subjectConfirmToken } from "./request.js";
import type { ListConfig } from "./schema.js";
import { ListStateStore } from "./state.js";

/** A reject reason is one line for the poster; longer ones are cut. */
const MAX_REASON = 300;

export type ReplyAction = { action: ModerationAction; line: string } | { unreadable: string };

/** One line of a moderator's (or a poster's) text, safe to quote in a notice body. */
function oneLine(s: string, max = 120): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
  return t.length > max ? t.slice(0, max - 3) + "..." : t;
}

/**
 * What the reply asks for: its first line that is not blank, not quoted (`>`) and not a client's
 * attribution line ("On ... wrote:"). No such line: approve, when the Subject still carries `token`
 * (an empty reply); anything else is unreadable and changes nothing.
 */
export function readReplyAction(subject: string | undefined, text: string, token: string): ReplyAction {
  for (const raw of text.split("\n")) {
    if (raw === "-- " || raw === "--" || raw === "-- \r" || raw === "--\r") break; // a signature
    const line = raw.trim();
    if (line === "" || line.startsWith(">")) continue;
    if (line.toLowerCase().endsWith("wrote:")) continue;
    const space = line.search(/\s/);
    const word = (space === -1 ? line : line.slice(0, space)).toLowerCase();
    const rest = space === -1 ? "" : line.slice(space + 1).trim();
    if (word === "approve" || word === "approved") return { action: { kind: "approve" }, line };
    if (word === "discard") return { action: { kind: "discard" }, line };
    if (word === "reject") {
      const reason = oneLine(rest, MAX_REASON);
      return { action: reason === "" ? { kind: "reject" } : { kind: "reject", reason }, line };
    }
    return { unreadable: oneLine(line) };
  }
  return subjectConfirmToken(subject) === token
    ? { action: { kind: "approve" }, line: "(an empty reply)" }
    : { unreadable: "(an empty reply, without the token in its Subject)" };
}

export interface ModerationReplyDeps {
  stateDir: string;
  queues: QueueSource;
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
}

export interface ModerationReply {
  list: ListConfig;
  /** the token from the address (`-request+confirm-TOKEN`) or from a `confirm TOKEN` Subject */
  token: string;
  /** the envelope sender, normalized */
  sender: string;
  raw: Buffer;
  /** the command entry being handled: the notices' ids derive from it (a re-run rewrites them) */
  origin: NoticeOrigin["entry"];
}

/**
 * Handle a reply that carries a moderation token. "other": the token is no moderation token (a
 * join/leave token, or unknown): the caller handles the mail as an ordinary request. "ignored":
 * from someone who may not moderate, or over the reply budget; nothing changed, nothing sent.
 * "answered": acted on (or refused, with the reason) and the moderator answered.
 */
export async function handleModerationReply(
  deps: ModerationReplyDeps,
  r: ModerationReply,
): Promise<"other" | "ignored" | "answered"> {
  const { list, token } = r;
  const store = new ListStateStore(deps.stateDir, list.address);
  if ((await store.read()).tokens[token]?.action !== "moderate") return "other";
  const log = deps.logger;
  const fromHeader = getHeader(r.raw, "from");
  const from = fromHeader === undefined ? [] : extractAddresses(fromHeader);
  const by = from[0];
  if (from.length !== 1 || by === undefined || !isModerator(list, by) || !isModerator(list, r.sender)) {
    log.warn(
      { sender: r.sender, from: from.slice(0, 3) },
      "reply to a held-post notice from someone who is not an owner or moderator: ignored",
    );
    return "ignored";
  }
  const { subject, text } = await requestText(r.raw);
  const wanted = readReplyAction(subject, text, token);
  const inReplyTo = messageId(r.raw);
  const now = (deps.now ?? Date.now)();
  const answered = await store.update(async (state) => {
    if (!takeReplySlot(state, by, now, list.max_replies_per_hour, log)) return false;
    const pending = state.tokens[token];
    let line = "action" in wanted ? wanted.line : wanted.unreadable;
    let reply: string;
    if (pending?.action !== "moderate") {
      // taken by a reply handled meanwhile
      reply = `This token was already used; nothing was changed.`;
    } else if (pending.expires <= now) {
      delete state.tokens[token];
      reply =
        `This token has expired; nothing was changed. The post (held id ${pending.held}) may still be ` +
        `held: act on it with \`qrunner approve|reject|discard ${pending.held}\` or in the web console.`;
    } else if (!("action" in wanted)) {
      line = wanted.unreadable;
      reply =
        `Not understood; nothing was changed. Reply with one of these as the first line:\n` +
        `  approve\n  reject REASON\n  discard`;
    } else {
      delete state.tokens[token];
      const result = await moderate(
        { stateDir: deps.stateDir, queues: deps.queues, logger: log, origin: { entry: r.origin, index: 1 } },
        list,
        pending.held,
        wanted.action,
        by,
      );
      // another moderator has the post right now, or the action failed: the token stays usable
      if (result.status === "taken" || result.status === "failed") state.tokens[token] = pending;
      if (result.status === "failed")
        log.warn({ held: pending.held, err: result.error }, "moderation by mail failed; the post stays held");
      reply = replyText(result);
    }
    await queueNotice(
      deps.queues,
      list.address,
      commandReply(list, {
        to: by,
        results: [{ line, reply }],
        ignored: 0,
        ...(inReplyTo !== undefined ? { inReplyTo } : {}),
      }),
      { entry: r.origin, index: 0 },
    );
    return true;
  });
  if (!answered) {
    log.warn({ by, max: list.max_replies_per_hour }, "reply limit reached; moderation reply ignored");
    return "ignored";
  }
  return "answered";
}

/** The answer to the moderator: what became of the post, in words. */
function replyText(r: ModerationResult): string {
  if (r.status !== "done") {
    if (r.status === "not-found")
      return `Nothing was done: held post ${r.id} is no longer held (another moderator handled it, or it expired).`;
    if (r.status === "taken")
      return `Nothing was done: another moderator is acting on held post ${r.id}; try again later.`;
    if (r.status === "failed")
      return `Nothing was done: the action failed and the post stays held; try again later.`;
    return `Nothing was done: ${describeResult(r)}.`;
  }
  const what = `the post from ${oneLine(r.meta.from ?? r.meta.sender) || "<>"} ("${oneLine(r.meta.subject ?? "") || "no subject"}")`;
  switch (r.action) {
    case "approve":
      return `Approved: ${what} goes to the list.`;
    case "discard":
      return `Discarded: ${what} was dropped.`;
    case "reject":
      return r.notice
        ? `Rejected: ${what}; the poster was told.`
        : `Rejected: ${what}; the poster was not told (${r.noNotice ?? "no notice"}).`;
  }
}
