/**
 * Where unrecognised bounces go (a list's `unrecognized_bounces`), and the hourly budget that keeps a
 * flood of them from flooding the owners: the first FORWARDS_PER_HOUR of an hour are forwarded whole,
 * the rest are listed in one digest per hour (at most DIGEST_ITEMS lines, all counted). Pure functions
 * over a list's state, applied inside one `ListStateStore.update`; nothing here grows without bound.
 */
import type { Config } from "../config/schema.js";
import type { ListConfig } from "./schema.js";
import type { DigestItem, ListState, UnrecognisedState } from "./state-shape.js";

export const FORWARDS_PER_HOUR = 3;
export const DIGEST_ITEMS = 50;
const HOUR = 3_600_000;

export type UnrecognisedAction =
  { action: "discard" } | { action: "forward"; to: string[]; fallback?: string };

/** Who gets a list's unrecognised bounces; `site` without a configured site_owner falls back to the owners. */
export function unrecognisedDestination(
  list: Pick<ListConfig, "unrecognized_bounces" | "owners">,
  config: Pick<Config, "site_owner">,
): UnrecognisedAction {
  switch (list.unrecognized_bounces) {
    case "discard":
      return { action: "discard" };
    case "site":
      return config.site_owner !== undefined
        ? { action: "forward", to: [config.site_owner] }
        : {
            action: "forward",
            to: [...list.owners],
            fallback: "no site_owner in the config: sent to the owners",
          };
    case "owners":
      return { action: "forward", to: [...list.owners] };
  }
}

/** The state's record, made well-formed (a hand-edited or older file may lack it or parts of it). */
export function unrecognisedState(state: ListState): UnrecognisedState {
  const u = state.unrecognised;
  const ok =
    u !== undefined &&
    Array.isArray(u.forwarded) &&
    typeof u.discarded === "number" &&
    (u.digest === undefined || (Array.isArray(u.digest.items) && typeof u.digest.since === "number"));
  if (!ok) state.unrecognised = { forwarded: [], discarded: 0 };
  return state.unrecognised as UnrecognisedState;
}

/** True, and the forward counted, while fewer than FORWARDS_PER_HOUR went out in the last hour. */
export function takeForwardSlot(state: ListState, now: number): boolean {
  const u = unrecognisedState(state);
  u.forwarded = u.forwarded.filter((t) => typeof t === "number" && t > now - HOUR);
  if (u.forwarded.length >= FORWARDS_PER_HOUR) return false;
  u.forwarded.push(now);
  return true;
}

/** List a bounce in the pending digest (opened now when there is none). */
export function addToDigest(state: ListState, item: DigestItem, now: number): void {
  const u = unrecognisedState(state);
  u.digest ??= { since: now, count: 0, items: [] };
  u.digest.count++;
  if (u.digest.items.length < DIGEST_ITEMS) u.digest.items.push(item);
}

/** The pending digest once its hour is over, taken out of the state; null when none is due. */
export function takeDueDigest(
  state: ListState,
  now: number,
): { since: number; count: number; items: DigestItem[] } | null {
  const u = state.unrecognised;
  if (u?.digest === undefined || typeof u.digest.since !== "number" || now < u.digest.since + HOUR)
    return null;
  const d = u.digest;
  delete u.digest;
  return { since: d.since, count: typeof d.count === "number" ? d.count : d.items.length, items: d.items };
}

/** Whether a digest is waiting and its hour is over (a cheap check before taking the lock). */
export function digestDue(state: ListState, now: number): boolean {
  const d = state.unrecognised?.digest;
  return d !== undefined && typeof d.since === "number" && now >= d.since + HOUR;
}
