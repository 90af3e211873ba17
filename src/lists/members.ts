/**
 * Who is on a list: the members in the list file, plus those who joined by mail, minus those who left
 * by mail (effective members), and of those the ones not disabled (who get posts).
 * Pure functions over a ListConfig and a ListState; callers change state inside `ListStateStore.update`.
 */
import { normalizeAddress, validateAddress } from "./addresses.js";
import type { ListConfig } from "./schema.js";
import type { ListState, MemberState } from "./state-shape.js";

type MemberList = Pick<ListConfig, "allMembers">;

export type MemberSource = "file" | "mail";

function has<T>(rec: Record<string, T>, key: string): boolean {
  return Object.hasOwn(rec, key);
}

/** The member's bounce state, if any (never a prototype property, whatever the key). */
export function memberState(state: ListState, addr: string): MemberState | undefined {
  const key = normalizeAddress(addr);
  return has(state.members, key) ? state.members[key] : undefined;
}

/** The member's bounce state, created (score 0) when missing. */
export function ensureMemberState(state: ListState, addr: string): MemberState {
  const key = normalizeAddress(addr);
  const existing = has(state.members, key) ? state.members[key] : undefined;
  if (existing) return existing;
  const fresh: MemberState = { score: 0 };
  state.members[key] = fresh;
  return fresh;
}

/** Effective members, file members first as written, then members who joined by mail; no duplicates. */
export function effectiveMembers(list: MemberList, state: ListState): string[] {
  const removed = new Set(state.removed.map(normalizeAddress));
  const seen = new Set<string>();
  const out: string[] = [];
  for (const a of [...list.allMembers, ...state.added]) {
    const key = normalizeAddress(a);
    if (removed.has(key) || seen.has(key)) continue;
    seen.add(key);
    out.push(a);
  }
  return out;
}

/** Where a member comes from: the list file, or a join by mail. */
export function memberSource(list: MemberList, addr: string): MemberSource {
  const key = normalizeAddress(addr);
  return list.allMembers.some((m) => normalizeAddress(m) === key) ? "file" : "mail";
}

/** Effective members who are not disabled: the recipients of a post. */
export function enabledRecipients(list: MemberList, state: ListState): string[] {
  return effectiveMembers(list, state).filter((a) => !memberState(state, a)?.disabled);
}

export function isMember(list: MemberList, state: ListState, addr: string): boolean {
  const key = normalizeAddress(addr);
  return effectiveMembers(list, state).some((m) => normalizeAddress(m) === key);
}

/**
 * A join by mail. Returns false when `addr` already is a member. Clears any old bounce state.
 * Throws InvalidAddressError for an address we would not deliver to (it becomes a recipient).
 */
export function addMember(list: MemberList, state: ListState, addr: string): boolean {
  const key = validateAddress(addr);
  if (isMember(list, state, key)) return false;
  state.removed = state.removed.filter((a) => normalizeAddress(a) !== key);
  if (memberSource(list, key) === "mail") state.added.push(key);
  delete state.members[key];
  return true;
}

/** A leave by mail. Returns false when `addr` is no member. */
export function removeMember(list: MemberList, state: ListState, addr: string): boolean {
  if (!isMember(list, state, addr)) return false;
  const key = normalizeAddress(addr);
  state.added = state.added.filter((a) => normalizeAddress(a) !== key);
  if (memberSource(list, key) === "file") state.removed.push(key);
  delete state.members[key];
  return true;
}

/** Stop posts to a member (e.g. reason "admin" from `qrunner members --disable`). Keeps an earlier reason. */
export function disableMember(state: ListState, addr: string, reason: string, now: number): void {
  const m = ensureMemberState(state, addr);
  if (!m.disabled) m.disabled = { reason, at: now };
}

/** Resume posts to a member and forget its bounce score (a fresh start, as Mailman does on re-enable). */
export function enableMember(state: ListState, addr: string): void {
  const key = normalizeAddress(addr);
  if (has(state.members, key)) state.members[key] = { score: 0 };
}

export interface MemberRow {
  address: string;
  source: MemberSource;
  state: "enabled" | "disabled";
  disabled?: { reason: string; at: number };
  score: number;
  lastBounce?: number;
}

export interface MemberReport {
  list: string;
  members: MemberRow[];
  /** file members who left by mail (they stay off until they join again) */
  leftByMail: string[];
  counts: { total: number; enabled: number; disabled: number };
}

/** Everything `qrunner members` shows. */
export function memberReport(
  list: Pick<ListConfig, "address" | "allMembers">,
  state: ListState,
): MemberReport {
  const fileKeys = new Set(list.allMembers.map(normalizeAddress));
  const rows: MemberRow[] = effectiveMembers(list, state).map((address) => {
    const m = memberState(state, address);
    const row: MemberRow = {
      address,
      source: fileKeys.has(normalizeAddress(address)) ? "file" : "mail",
      state: m?.disabled ? "disabled" : "enabled",
      score: m?.score ?? 0,
    };
    if (m?.disabled) row.disabled = { reason: m.disabled.reason, at: m.disabled.at };
    if (m?.lastBounce !== undefined) row.lastBounce = m.lastBounce;
    return row;
  });
  const disabled = rows.filter((r) => r.state === "disabled").length;
  return {
    list: list.address,
    members: rows,
    leftByMail: state.removed.filter((a) => fileKeys.has(normalizeAddress(a))),
    counts: { total: rows.length, enabled: rows.length - disabled, disabled },
  };
}
