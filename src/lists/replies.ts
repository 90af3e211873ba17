/**
 * The rate limit on command replies, kept in a list's state (`replies`). Separate from the store in
 * state.ts: like members.ts and tokens.ts it only changes a state in memory, inside one `update`.
 */
import { normalizeAddress } from "./addresses.js";
import type { ListState } from "./state-shape.js";

const HOUR = 3_600_000;

/**
 * Rate limit for command replies (the list's `max_replies_per_hour`): true, and the reply counted,
 * when `addr` has had fewer than `maxPerHour` replies in the last hour; false when it must get none.
 * Stops a forged sender or a mail loop from turning the list into a mail cannon. Old records of every
 * address are pruned on the way, so the file stays small.
 */
export function takeReplySlot(state: ListState, addr: string, now: number, maxPerHour: number): boolean {
  for (const [a, times] of Object.entries(state.replies)) {
    const recent = times.filter((t) => t > now - HOUR);
    if (recent.length > 0) state.replies[a] = recent;
    else delete state.replies[a];
  }
  const key = normalizeAddress(addr);
  const times = Object.hasOwn(state.replies, key) ? (state.replies[key] ?? []) : [];
  if (times.length >= maxPerHour) return false;
  state.replies[key] = [...times, now];
  return true;
}
