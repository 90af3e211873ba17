/**
 * The rate limits on mail the list writes back to an address, kept in a list's state: command replies
 * and confirmation requests (`replies`, per address), and rejection notices (those too, plus a cap per
 * list and hour, `rejections`: a flood of posts from forged senders makes at most that many notices).
 * Separate from the store in state.ts: like members.ts and tokens.ts it only changes a state in memory,
 * inside one `update`. What it keeps is bounded: at most MAX_REPLY_ADDRESSES addresses (the oldest
 * dropped, and said so), each with at most its hourly budget of times.
 */
import { normalizeAddress } from "./addresses.js";
import type { ListState } from "./state-shape.js";

const HOUR = 3_600_000;

/** Addresses whose replies are remembered at most; past it the least recently answered are dropped. */
export const MAX_REPLY_ADDRESSES = 500;

/** Where a dropped record is reported (a pino logger fits). */
export interface DropLog {
  warn(obj: object, msg: string): void;
}

/**
 * Rate limit for command replies (the list's `max_replies_per_hour`): true, and the reply counted,
 * when `addr` has had fewer than `maxPerHour` replies in the last hour; false when it must get none.
 * Stops a forged sender or a mail loop from turning the list into a mail cannon. Old records of every
 * address are pruned on the way, so the file stays small.
 */
export function takeReplySlot(
  state: ListState,
  addr: string,
  now: number,
  maxPerHour: number,
  log?: DropLog,
): boolean {
  for (const [a, times] of Object.entries(state.replies)) {
    const recent = times.filter((t) => t > now - HOUR);
    if (recent.length > 0) state.replies[a] = recent;
    else delete state.replies[a];
  }
  const key = normalizeAddress(addr);
  const times = Object.hasOwn(state.replies, key) ? (state.replies[key] ?? []) : [];
  if (times.length >= maxPerHour) return false;
  state.replies[key] = [...times, now];
  capReplies(state, key, log);
  return true;
}

/** Keep at most MAX_REPLY_ADDRESSES addresses: drop those answered longest ago (never `keep`). */
function capReplies(state: ListState, keep: string, log?: DropLog): void {
  const keys = Object.keys(state.replies);
  const over = keys.length - MAX_REPLY_ADDRESSES;
  if (over <= 0) return;
  const last = (k: string): number => Math.max(...(state.replies[k] ?? [0]));
  const oldest = keys
    .filter((k) => k !== keep)
    .sort((a, b) => last(a) - last(b))
    .slice(0, over);
  for (const k of oldest) delete state.replies[k];
  log?.warn(
    { dropped: oldest.length, kept: MAX_REPLY_ADDRESSES },
    "reply records over the cap; the oldest were dropped",
  );
}

/**
 * May the list send a rejection notice to `addr` now? Within the list's hourly cap of rejection
 * notices (`maxPerHour`, to anyone) and `addr`'s reply budget (`perAddress`); when it may, both are
 * counted. A notice held back is counted in `rejections.suppressed`.
 */
export function takeRejectionSlot(
  state: ListState,
  addr: string,
  now: number,
  limits: { maxPerHour: number; perAddress: number },
  log?: DropLog,
): boolean {
  const r = state.rejections;
  const sent = Array.isArray(r?.sent) ? r.sent.filter((t) => typeof t === "number" && t > now - HOUR) : [];
  const suppressed = typeof r?.suppressed === "number" ? r.suppressed : 0;
  state.rejections = { sent, suppressed };
  if (sent.length >= limits.maxPerHour || !takeReplySlot(state, addr, now, limits.perAddress, log)) {
    state.rejections.suppressed = suppressed + 1;
    return false;
  }
  sent.push(now);
  return true;
}
