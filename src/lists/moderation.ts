/**
 * The moderation actions on a held post: approve, reject (with a reason, told to the poster), discard.
 * One code path for every way a moderator acts: the CLI (`qrunner approve ...`), a reply to the
 * held-post notice (the command runner) and the web console all call `moderate`.
 *
 * Each action first claims the post (an atomic rename, held.ts), so two moderators acting on one post
 * at once cannot both post it; an approved post is queued durably in `incoming` before it leaves the
 * held store, and a rejection notice is queued in `outgoing` before the post is dropped. A failed
 * action puts the post back.
 */
import { QueueUnavailableError } from "../util/errors.js";
import { isValidAddress, normalizeAddress } from "./addresses.js";
import { noticeDecision } from "./checks.js";
import { HeldStore } from "./held.js";
import type { HeldMeta, HeldPost } from "./held-format.js";
import { normalizeHeldId } from "./held-ids.js";
import { messageId } from "./message.js";
import { rejectedByModerator } from "./notice-texts.js";
import { queueNotice, type NoticeOrigin, type QueueSource } from "./queue-notice.js";
import type { ListConfig } from "./schema.js";

export type ModerationAction =
  { kind: "approve" } | { kind: "reject"; reason?: string } | { kind: "discard" };
export type ModerationKind = ModerationAction["kind"];

/** Where a moderation action is logged (a pino logger fits). */
export interface ModerationLog {
  info(obj: object, msg: string): void;
}

export interface ModerationDeps {
  /** the config's `state` directory (held posts live under it) */
  stateDir: string;
  /** opens `incoming` (approve) and `outgoing` (the rejection notice) */
  queues: QueueSource;
  logger?: ModerationLog;
  /** ms epoch; default Date.now */
  now?: () => number;
  /**
   * The queue entry whose handling acts (a reply handled by the command runner): the rejection
   * notice's id is then derived from it, so a re-run after a crash does not queue a second notice.
   */
  origin?: NoticeOrigin;
}

/** What happened; callers map it to an exit code, an HTTP response or a mail reply. */
export type ModerationResult =
  | {
      status: "done";
      action: ModerationKind;
      id: string;
      list: string;
      /** the held post's metadata as it was */
      meta: HeldMeta;
      /** approve: the entry queued in incoming */
      queued?: string;
      /** reject: the notice queued in outgoing, and to whom */
      notice?: { id: string; to: string[] };
      /** reject: why the poster was not told (null sender, robot, no usable address) */
      noNotice?: string;
    }
  /** no post held by that id in that list (never held, or already handled, or expired) */
  | { status: "not-found"; id: string }
  /** another moderator's action has it right now */
  | { status: "taken"; id: string; list: string }
  /** approve or reject of a post whose list no longer exists (discard still works) */
  | { status: "no-list"; id: string; list: string }
  /** the action failed and the post stays held; `temporary`: worth retrying (queue unavailable) */
  | { status: "failed"; id: string; list: string; error: unknown; temporary: boolean };

/**
 * Act on held post `id` of `list`. `list` is the list's config, or the posting address of a list that
 * no longer exists (then only discard works). `by` names the moderator for the log.
 */
export async function moderate(
  deps: ModerationDeps,
  list: ListConfig | string,
  id: string,
  action: ModerationAction,
  by?: string,
): Promise<ModerationResult> {
  const address = typeof list === "string" ? list : list.address;
  const n = normalizeHeldId(id);
  if (n === null) return { status: "not-found", id };
  const now = deps.now ?? Date.now;
  const store = new HeldStore(deps.stateDir, address);
  const seen = await store.get(n, now());
  if (!seen)
    return (await store.isClaimed(n))
      ? { status: "taken", id: n, list: address }
      : { status: "not-found", id: n };
  if (typeof list === "string" && action.kind !== "discard")
    return { status: "no-list", id: n, list: address };
  const post = await store.claim(n);
  if (!post) {
    // gone between get and claim: being handled, or handled meanwhile
    return (await store.isClaimed(n)) || (await store.get(n, now()))
      ? { status: "taken", id: n, list: address }
      : { status: "not-found", id: n };
  }
  try {
    const result: ModerationResult = {
      status: "done",
      action: action.kind,
      id: n,
      list: address,
      meta: post.meta,
    };
    if (action.kind === "approve" && typeof list !== "string") {
      result.queued = await queueApproved(deps.queues, list, post, by);
    } else if (action.kind === "reject" && typeof list !== "string") {
      const sent = await sendRejection(deps, list, post, action.reason);
      if (typeof sent === "string") result.noNotice = sent;
      else result.notice = sent;
    }
    await post.done();
    deps.logger?.info(
      {
        list: address,
        held: n,
        action: action.kind,
        ...(by !== undefined ? { by } : {}),
        ...(result.queued !== undefined ? { queued: result.queued } : {}),
      },
      `held post ${action.kind === "approve" ? "approved" : action.kind === "reject" ? "rejected" : "discarded"}`,
    );
    return result;
  } catch (err) {
    await post.release();
    return {
      status: "failed",
      id: n,
      list: address,
      error: err,
      temporary: err instanceof QueueUnavailableError,
    };
  }
}

/** Queue the post in incoming marked approved: the incoming runner skips the moderation checks. */
async function queueApproved(
  queues: QueueSource,
  list: ListConfig,
  post: HeldPost,
  by: string | undefined,
): Promise<string> {
  const incoming = await queues.get("incoming");
  return incoming.enqueue(post.raw, {
    sender: post.meta.sender,
    recipients: [list.address],
    list: list.address,
    to: list.address,
    kind: "post",
    ...(post.meta.received !== undefined ? { received: post.meta.received } : {}),
    extra: { approved: true, heldId: post.meta.id, ...(by !== undefined ? { approvedBy: by } : {}) },
  });
}

/** Queue the rejection notice to the poster; a string says why none was sent. */
async function sendRejection(
  deps: ModerationDeps,
  list: ListConfig,
  post: HeldPost,
  reason: string | undefined,
): Promise<{ id: string; to: string[] } | string> {
  // RFC 3834: no automatic mail to the null sender, robots, lists or auto-replies
  const may = noticeDecision(post.meta.sender, post.raw);
  if (!may.allowed) return may.reason;
  // the header From is the person; the envelope sender may be a forwarder or a bounce address
  const poster = [post.meta.from, post.meta.sender].find(
    (a): a is string => a !== undefined && isValidAddress(a),
  );
  if (poster === undefined) return "the post has no usable sender address";
  const mid = messageId(post.raw);
  const n = rejectedByModerator(list, {
    poster: normalizeAddress(poster),
    ...(post.meta.subject !== undefined ? { subject: post.meta.subject } : {}),
    ...(mid !== undefined ? { messageId: mid } : {}),
    ...(reason !== undefined ? { reason } : {}),
  });
  const id = await queueNotice(deps.queues, list.address, n, deps.origin);
  return { id, to: n.recipients };
}

/** One line for a moderator: what was done (the CLI prints it, a mail reply quotes it). */
export function describeResult(r: ModerationResult): string {
  switch (r.status) {
    case "done": {
      let said = `${{ approve: "approved", reject: "rejected", discard: "discarded" }[r.action]} ${r.id} (${r.list})`;
      if (r.queued !== undefined) said += `: queued ${r.queued} in incoming`;
      if (r.notice) said += `: notice to ${r.notice.to.join(", ")} queued ${r.notice.id} in outgoing`;
      if (r.noNotice !== undefined) said += ` (no notice: ${r.noNotice})`;
      return said;
    }
    case "not-found":
      return `no held post with id ${JSON.stringify(r.id)} (it may have been handled or expired)`;
    case "taken":
      return `held post ${r.id} is being handled by another moderator`;
    case "no-list":
      return `list ${r.list} no longer exists`;
    case "failed":
      return `held post ${r.id} stays held: the action failed`;
  }
}
