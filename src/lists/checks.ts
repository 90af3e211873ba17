/**
 * The checks a post goes through, in order: loop, size, poster. Each is a small pure function over
 * the raw bytes (header scan only) that returns what to do and a reason for the log. Whether a
 * notice may be sent back (RFC 3834: never answer robots, lists or auto-replies) is its own check.
 */
import type { ListConfig } from "./schema.js";
import { MessageHeader } from "./message.js";
import { listId } from "./headers.js";
import { extractAddresses } from "./header-addresses.js";
import { normalizeAddress, sameAddress } from "./addresses.js";

export type PostAction = "accept" | "hold" | "reject" | "discard";

export interface LoopOutcome {
  action: "continue" | "discard";
  reason: string;
}

export interface SizeOutcome {
  action: "continue" | "reject";
  reason: string;
  size: number;
}

export interface PosterOutcome {
  action: PostAction;
  reason: string;
  /** the address the decision was about: the member that matched, else the envelope sender or From */
  poster: string;
}

export interface NoticeDecision {
  allowed: boolean;
  reason: string;
}

type MessageInput = Buffer | MessageHeader;

function headerOf(msg: MessageInput): MessageHeader {
  return msg instanceof MessageHeader ? msg : MessageHeader.of(msg);
}

/** A message that already went through this list (its List-Id or X-BeenThere) is a loop: discard it. */
export function checkLoop(msg: MessageInput, list: ListConfig): LoopOutcome {
  const h = headerOf(msg);
  const id = listId(list);
  for (const v of h.getAll("list-id")) {
    const m = /<([^<>]*)>/.exec(v);
    if ((m ? (m[1] ?? "") : v).trim().toLowerCase() === id)
      return { action: "discard", reason: `mail loop: the message already carries List-Id <${id}>` };
  }
  for (const v of h.getAll("x-beenthere")) {
    // the list's own address: matched case-insensitively, as recipients are routed to lists
    if (extractAddresses(v).some((a) => normalizeAddress(a).toLowerCase() === list.address.toLowerCase()))
      return {
        action: "discard",
        reason: `mail loop: the message already carries X-BeenThere: ${list.address}`,
      };
  }
  return { action: "continue", reason: "no loop" };
}

/** Over the list's max_size (bytes, as received) is rejected; max_size 0 means no limit. */
export function checkSize(raw: Buffer, list: ListConfig): SizeOutcome {
  const size = raw.length;
  if (list.max_size > 0 && size > list.max_size)
    return {
      action: "reject",
      reason: `message is ${size} bytes, over the list's max_size of ${list.max_size}`,
      size,
    };
  return { action: "continue", reason: `size ${size} within ${list.max_size || "no limit"}`, size };
}

/**
 * Who may post: a member or owner, matched on the envelope sender or any From address, is accepted;
 * anyone else gets the list's `nonmembers` action. A null envelope sender is a bounce or
 * auto-reply that went to the posting address: discarded.
 */
export function posterOutcome(
  sender: string,
  fromHeader: string | undefined,
  list: ListConfig,
  isMember: (address: string) => boolean,
): PosterOutcome {
  const from = fromHeader === undefined ? [] : extractAddresses(fromHeader);
  if (sender === "" || sender === "<>")
    return {
      action: "discard",
      reason: "null envelope sender: a bounce or auto-reply sent to the posting address",
      poster: from[0] ?? "",
    };
  for (const a of [sender, ...from]) {
    if (isMember(a)) return { action: "accept", reason: `${a} is a member`, poster: a };
    if (list.owners.some((o) => sameAddress(o, a)))
      return { action: "accept", reason: `${a} is an owner`, poster: a };
  }
  const who =
    from[0] !== undefined && !sameAddress(from[0], sender) ? `${sender} (From: ${from[0]})` : sender;
  return {
    action: list.nonmembers,
    reason: `${who} is not a member; nonmembers: ${list.nonmembers}`,
    poster: sender,
  };
}

/** Local parts that are robots: answering them makes loops or bounces (RFC 3834 section 2). */
const ROBOT_NAME =
  /^(?:mailer-daemon|mailerdaemon|mail-daemon|postmaster|nobody|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|listserv|majordomo|mailman)$/;
/** `<anything>-bounces` and the like: a list's or a list manager's role address. */
const ROBOT_SUFFIXES = ["-bounce", "-bounces", "-request", "-owner", "-admin", "-confirm", "-join", "-leave"];

/**
 * A robot's local part, with or without a `+detail`: `mailer-daemon`, `dev-bounces+x=y`, `owner-dev`.
 * Each candidate (the whole, and the part before each `+`) is tested with anchored, constant-time
 * checks, so the cost is linear in the local part's length whatever it holds (a single regex with
 * `.+-bounces(?:\+.*)?$` backtracks quadratically on a run of `+`).
 */
function isRobotLocal(local: string): boolean {
  const lower = local.toLowerCase();
  if (lower.startsWith("owner-") && lower.length > "owner-".length) return true;
  // the candidate is lower[0, end): no copies, the names are short and the suffixes compared in place
  const robot = (end: number): boolean =>
    (end <= 16 && ROBOT_NAME.test(lower.slice(0, end))) ||
    ROBOT_SUFFIXES.some((s) => end > s.length && lower.endsWith(s, end));
  for (let plus = lower.indexOf("+"); plus !== -1; plus = lower.indexOf("+", plus + 1))
    if (robot(plus)) return true;
  return robot(lower.length);
}

function firstToken(v: string): string {
  return (v.split(";")[0] ?? "").trim().toLowerCase();
}

/**
 * May we send a notice (rejection, held, command reply) back to `sender` about this message?
 * No for the null sender, robots, auto-submitted mail, bulk/junk/list precedence, list traffic
 * (List-Id, X-BeenThere), X-Loop, auto-reply markers and delivery or read reports.
 */
export function noticeDecision(sender: string, msg: MessageInput): NoticeDecision {
  const s = sender.trim().replace(/^<|>$/g, "");
  if (s === "") return { allowed: false, reason: "null envelope sender" };
  const at = s.lastIndexOf("@");
  const local = at === -1 ? s : s.slice(0, at);
  if (isRobotLocal(local)) return { allowed: false, reason: `sender ${s} is a robot address` };
  const h = headerOf(msg);
  const auto = h.get("auto-submitted");
  if (auto !== undefined && firstToken(auto) !== "no")
    return { allowed: false, reason: `Auto-Submitted: ${firstToken(auto)}` };
  const precedence = h.get("precedence");
  if (precedence !== undefined && /^(bulk|junk|list)$/.test(firstToken(precedence)))
    return { allowed: false, reason: `Precedence: ${firstToken(precedence)}` };
  for (const name of ["list-id", "x-beenthere", "x-loop", "x-autoreply", "x-autorespond"]) {
    if (h.has(name)) return { allowed: false, reason: `carries ${name}` };
  }
  const suppress = h.get("x-auto-response-suppress");
  if (suppress !== undefined && /\b(all|autoreply|oof)\b/i.test(suppress))
    return { allowed: false, reason: `X-Auto-Response-Suppress: ${suppress}` };
  const type = h.get("content-type");
  if (type !== undefined && /^multipart\/report\b/i.test(type.trim()))
    return { allowed: false, reason: "a delivery or read report (multipart/report)" };
  return { allowed: true, reason: "ordinary sender" };
}

export function noticeAllowed(sender: string, msg: MessageInput): boolean {
  return noticeDecision(sender, msg).allowed;
}

export interface PostVerdict {
  action: PostAction;
  reason: string;
  /** which check decided */
  check: "loop" | "size" | "poster";
  /** the poster may be told (reject or hold notice): noticeDecision allowed it */
  notify: boolean;
  poster: string;
}

/** All post checks in order (loop, size, poster), on one scan of the header. */
export function screenPost(
  raw: Buffer,
  sender: string,
  list: ListConfig,
  isMember: (address: string) => boolean,
): PostVerdict {
  const h = MessageHeader.of(raw);
  const loop = checkLoop(h, list);
  if (loop.action === "discard")
    return { action: "discard", reason: loop.reason, check: "loop", notify: false, poster: sender };
  const tell = (): boolean => noticeDecision(sender, h).allowed;
  const size = checkSize(raw, list);
  if (size.action === "reject")
    return { action: "reject", reason: size.reason, check: "size", notify: tell(), poster: sender };
  const p = posterOutcome(sender, h.get("from"), list, isMember);
  const notify = p.action === "reject" || p.action === "hold" ? tell() : false;
  return { action: p.action, reason: p.reason, check: "poster", notify, poster: p.poster };
}
