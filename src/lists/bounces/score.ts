/**
 * Bounce scoring: pure functions over one member's bounce state, as Mailman does it.
 *
 * - What a bounce adds depends on why it bounced (the detector's reason, ./reason.ts), as Mailman 2
 *   scores hard bounces 1 and soft ones 0.5: a hard bounce (the mailbox or domain is gone: user
 *   unknown, host unknown, moved) adds 1; a soft final failure (mailbox full, our message or host
 *   refused, an undefined failure, ...) adds `softWeight` (default 0.5); a delay ("delayed") adds
 *   `temporaryWeight` (default 0: delays do not count). Without a reason (older callers), a permanent
 *   bounce adds 1 and a temporary one `temporaryWeight`, as before.
 * - At most one bounce counts per UTC day, whichever kind comes first that day: a burst of bounces
 *   for one post (or for one day's posts) is one piece of evidence, not many.
 * - When the last bounce is older than `staleAfter`, the score starts again from 0 before adding:
 *   old, isolated trouble is forgotten.
 * - Reaching `threshold` disables the member (reason "bounces") once; `disabledNow` is true only on
 *   that transition, so the caller notifies the owner and the member exactly once. A member already
 *   disabled (for bounces or anything else) keeps its reason; scores keep counting for display.
 * - A bounce that adds nothing (a temporary one at weight 0) leaves the state as it was, so it does
 *   not keep an old score from going stale either.
 */
import { QrunnerError } from "../../util/errors.js";
import type { BounceKind } from "./dsn.js";
import type { BounceReason } from "./reason.js";

export type { BounceKind } from "./dsn.js";

export interface MemberBounceState {
  score: number;
  /** ms epoch of the last bounce that counted or could have (weight > 0) */
  lastBounce?: number;
  /** UTC day (YYYY-MM-DD) of the last bounce that added to the score */
  lastCounted?: string;
  disabled?: { reason: "bounces" | string; at: number };
}

export interface BounceEvent {
  kind: BounceKind;
  /** ms epoch */
  at: number;
}

export interface BouncePolicy {
  /** score at which the member is disabled */
  threshold: number;
  /** ms without bounces after which the score starts again from 0 */
  staleAfter: number;
  /** what a temporary bounce (a delay) adds (0..1) */
  temporaryWeight: number;
  /** what a soft final failure (mailbox full, refused, ...) adds (0..1); SOFT_WEIGHT when absent */
  softWeight?: number;
}

/** Mailman 2's score for a soft bounce, against 1 for a hard one. */
export const SOFT_WEIGHT = 0.5;

/** Reasons that mean the address is gone: they weigh a full 1. */
const HARD_REASONS: ReadonlySet<string> = new Set(["userunknown", "hostunknown", "hasmoved"]);

export interface BounceOutcome {
  state: MemberBounceState;
  /** the event added to the score */
  counted: boolean;
  /** this event disabled the member (true once, on the transition) */
  disabledNow: boolean;
}

/** A policy or event that cannot be scored (a bug in the caller, or an unvalidated config). */
export class BounceScoreError extends QrunnerError {
  constructor(message: string) {
    super("EBOUNCE_SCORE", message);
  }
}

export const DEFAULT_POLICY: BouncePolicy = { threshold: 5, staleAfter: 7 * 86_400_000, temporaryWeight: 0 };

/** A list's `bounce:` settings (src/lists/schema.ts, durations already in ms) as a policy. */
export function policyFromList(bounce: {
  threshold: number;
  stale_after: number;
  temporary_weight: number;
  soft_weight?: number;
}): BouncePolicy {
  const policy: BouncePolicy = {
    threshold: bounce.threshold,
    staleAfter: bounce.stale_after,
    temporaryWeight: bounce.temporary_weight,
  };
  if (bounce.soft_weight !== undefined) policy.softWeight = bounce.soft_weight;
  return policy;
}

/**
 * What one bounce adds to the score: 1 for a hard bounce, `softWeight` for a soft final failure,
 * `temporaryWeight` for a delay. A soft bounce never weighs more than a hard one.
 */
export function bounceWeight(
  kind: BounceKind,
  reason: BounceReason | undefined,
  policy: BouncePolicy,
): number {
  const soft = Math.min(1, policy.softWeight ?? SOFT_WEIGHT);
  if (reason === undefined) return kind === "permanent" ? 1 : policy.temporaryWeight;
  if (HARD_REASONS.has(reason)) return 1;
  if (reason === "delayed") return policy.temporaryWeight;
  // "notaccept" (a null MX) is hard when the detector said permanent
  return kind === "permanent" && reason === "notaccept" ? 1 : soft;
}

/** The UTC day of a ms epoch, YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Whether the state's score no longer counts at `now` (its last bounce is older than staleAfter). */
export function isStale(state: MemberBounceState, now: number, staleAfter: number): boolean {
  return state.lastBounce !== undefined && now - state.lastBounce > staleAfter;
}

/** The score as it stands at `now`: 0 once stale. For display (`qrunner members`). */
export function effectiveScore(state: MemberBounceState, now: number, staleAfter: number): number {
  return isStale(state, now, staleAfter) ? 0 : state.score;
}

function check(event: BounceEvent, policy: BouncePolicy): void {
  if (!Number.isFinite(event.at) || event.at < 0)
    throw new BounceScoreError(`bounce time ${event.at} is not a ms epoch`);
  if (event.kind !== "permanent" && event.kind !== "temporary") {
    throw new BounceScoreError(
      `bounce kind ${JSON.stringify(event.kind)} is neither permanent nor temporary`,
    );
  }
  if (!(policy.threshold > 0))
    throw new BounceScoreError(`bounce threshold ${policy.threshold} must be above 0`);
  if (!(policy.staleAfter >= 0))
    throw new BounceScoreError(`bounce stale_after ${policy.staleAfter} must be 0 or more`);
  if (!(policy.temporaryWeight >= 0) || !Number.isFinite(policy.temporaryWeight)) {
    throw new BounceScoreError(`bounce temporary_weight ${policy.temporaryWeight} must be a number from 0`);
  }
  if (policy.softWeight !== undefined && (!(policy.softWeight >= 0) || !Number.isFinite(policy.softWeight))) {
    throw new BounceScoreError(`bounce soft_weight ${policy.softWeight} must be a number from 0`);
  }
}

/**
 * Apply one bounce to a member's state. Pure: the input state is not changed. `reason` is the
 * detector's (BounceDetail.reason); without it the kind alone decides, as before.
 */
export function applyBounce(
  state: MemberBounceState,
  event: BounceEvent,
  policy: BouncePolicy,
  reason?: BounceReason,
): BounceOutcome {
  void reason;
  check(event, policy);
  const weight = bounceWeight(event.kind, reason, policy);
  const next: MemberBounceState = { ...state };
  if (state.disabled) next.disabled = { ...state.disabled };
  if (weight <= 0) return { state: next, counted: false, disabledNow: false };

  if (isStale(state, event.at, policy.staleAfter)) {
    next.score = 0;
    delete next.lastCounted;
  }
  // out-of-order events (a late bounce for an older post) never move lastBounce back
  next.lastBounce = state.lastBounce === undefined ? event.at : Math.max(state.lastBounce, event.at);

  const day = utcDay(event.at);
  // string order is date order for YYYY-MM-DD: a day already counted, or earlier, adds nothing
  if (next.lastCounted !== undefined && day <= next.lastCounted)
    return { state: next, counted: false, disabledNow: false };

  next.score = roundScore((Number.isFinite(next.score) ? next.score : 0) + weight);
  next.lastCounted = day;
  let disabledNow = false;
  if (next.score >= policy.threshold && next.disabled === undefined) {
    next.disabled = { reason: "bounces", at: event.at };
    disabledNow = true;
  }
  return { state: next, counted: true, disabledNow };
}

/** Keep fractional weights from accumulating float noise (0.1 + 0.2). */
function roundScore(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
