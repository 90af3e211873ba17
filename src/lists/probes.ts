/**
 * Bounce probes (a list's `verp_probes`, as Mailman 3 does it): when a member's bounce score reaches
 * the threshold the member is not disabled at once; a probe message goes to the member from a signed
 * probe VERP address (src/lists/verp.ts), and only a bounce of that probe disables. A probe that has
 * not bounced after `bounce.probe_expires` is taken as delivered: the score starts again from 0.
 * Pure functions over a list's state, applied inside one `ListStateStore.update`.
 */
import { normalizeAddress } from "./addresses.js";
import type { ListState } from "./state-shape.js";

function probes(state: ListState): Record<string, { sent: number }> {
  if (typeof state.probes !== "object" || state.probes === null || Array.isArray(state.probes))
    state.probes = {};
  return state.probes;
}

/** The member's pending probe, if any. */
export function pendingProbe(state: ListState, member: string): { sent: number } | undefined {
  const all = state.probes;
  const key = normalizeAddress(member);
  return all !== undefined && Object.hasOwn(all, key) ? all[key] : undefined;
}

/** Record a probe sent to `member` now. */
export function startProbe(state: ListState, member: string, now: number): void {
  probes(state)[normalizeAddress(member)] = { sent: now };
}

/** Take the member's pending probe out of the state (its bounce has come). */
export function endProbe(state: ListState, member: string): void {
  if (state.probes !== undefined) delete state.probes[normalizeAddress(member)];
}

/**
 * Forget probes older than `expiresMs` and start their members' scores again from 0 (the probe was
 * delivered). Returns the members whose probe expired.
 */
export function expireProbes(state: ListState, now: number, expiresMs: number): string[] {
  if (state.probes === undefined) return [];
  const gone: string[] = [];
  for (const [member, p] of Object.entries(state.probes)) {
    if (typeof p?.sent === "number" && now - p.sent < expiresMs) continue;
    delete state.probes[member];
    gone.push(member);
    const m = Object.hasOwn(state.members, member) ? state.members[member] : undefined;
    if (m !== undefined) {
      m.score = 0;
      delete m.lastCounted;
    }
  }
  return gone;
}

/** Whether any probe has expired (a cheap check before taking the lock). */
export function probesExpired(state: ListState, now: number, expiresMs: number): boolean {
  return Object.values(state.probes ?? {}).some(
    (p) => !(typeof p?.sent === "number" && now - p.sent < expiresMs),
  );
}
