/**
 * Confirmation tokens for join and leave by mail: the command runner mails a token to the address,
 * and only a reply carrying it performs the action (so nobody can subscribe someone else). A held
 * post's notice carries a moderation token the same way (its reply acts on the post once). Tokens live
 * in the list's state file; consuming one happens under the state lock, so a token works exactly once
 * even when two replies reach two workers at the same moment.
 */
import { randomBytes } from "node:crypto";
import { normalizeAddress } from "./addresses.js";
import type { ListConfig } from "./schema.js";
import type { ListStateStore } from "./state.js";
import type { ListState, MembershipToken, PendingAction } from "./state-shape.js";

/** 18 random bytes: 24 URL-safe characters, 144 bits. */
const TOKEN_BYTES = 18;
const TOKEN_RE = /^[A-Za-z0-9_-]{20,64}$/;
/** pending requests kept per address and action; older ones are dropped (bounds what a flood can store) */
const MAX_PENDING_PER_ADDRESS = 3;
/** pending requests kept per list: a flood of joins from forged senders stores no more (oldest dropped) */
export const MAX_TOKENS = 500;

export type TokenAction = MembershipToken["action"];

export type ConsumeResult =
  | { ok: true; pending: PendingAction }
  | { ok: false; reason: "unknown" | "expired"; pending?: PendingAction };

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString("base64url");
}

/**
 * A moderation token: lowercase hex (20 bytes, 160 bits), because it travels in an address
 * (`dev-request+confirm-TOKEN@`) whose local part a mail system might fold to one case.
 */
export function newModerationToken(): string {
  return randomBytes(20).toString("hex");
}

/** Does this look like one of our tokens (before any lookup)? */
export function isTokenSyntax(token: string): boolean {
  return TOKEN_RE.test(token);
}

/** Forget expired tokens; returns how many went. */
export function pruneTokens(state: ListState, now: number): number {
  let n = 0;
  for (const [t, p] of Object.entries(state.tokens)) {
    if (p.expires <= now) {
      delete state.tokens[t];
      n++;
    }
  }
  return n;
}

/**
 * Keep at most MAX_TOKENS - 1 tokens of one family (membership, moderation) before one is added, the
 * oldest dropped: a flood of forged joins cannot push out the held posts' tokens, nor the reverse.
 */
function capFamily(
  state: ListState,
  moderation: boolean,
  log: { warn(obj: object, msg: string): void } | undefined,
): void {
  const all = Object.entries(state.tokens).filter(([, p]) => (p.action === "moderate") === moderation);
  if (all.length < MAX_TOKENS) return;
  const oldest = all.sort(([, a], [, b]) => a.created - b.created).slice(0, all.length - MAX_TOKENS + 1);
  for (const [t] of oldest) delete state.tokens[t];
  log?.warn(
    { dropped: oldest.length, kept: MAX_TOKENS, moderation },
    "confirmation tokens over the cap; the oldest were dropped",
  );
}

/** Store a new pending join or leave in `state` and return its token. */
export function addToken(
  state: ListState,
  action: TokenAction,
  address: string,
  now: number,
  expiresMs: number,
  log?: { warn(obj: object, msg: string): void },
): string {
  pruneTokens(state, now);
  const addr = normalizeAddress(address);
  const same = Object.entries(state.tokens)
    .filter(([, p]) => p.action === action && p.address === addr)
    .sort(([, a], [, b]) => a.created - b.created);
  for (const [t] of same.slice(0, Math.max(0, same.length - MAX_PENDING_PER_ADDRESS + 1)))
    delete state.tokens[t];
  capFamily(state, false, log);
  let token = newToken();
  while (Object.hasOwn(state.tokens, token)) token = newToken();
  state.tokens[token] = { action, address: addr, created: now, expires: now + expiresMs };
  return token;
}

/** Store a token for acting on held post `held` by mail and return it. */
export function addModerationToken(
  state: ListState,
  held: string,
  now: number,
  expiresMs: number,
  log?: { warn(obj: object, msg: string): void },
): string {
  pruneTokens(state, now);
  capFamily(state, true, log);
  let token = newModerationToken();
  while (Object.hasOwn(state.tokens, token)) token = newModerationToken();
  state.tokens[token] = { action: "moderate", held, created: now, expires: now + expiresMs };
  return token;
}

/** Take a token out of `state`: the pending action once, then "unknown"; "expired" after its time. */
export function takeToken(state: ListState, token: string, now: number): ConsumeResult {
  if (!isTokenSyntax(token) || !Object.hasOwn(state.tokens, token)) return { ok: false, reason: "unknown" };
  const pending = state.tokens[token];
  delete state.tokens[token];
  if (!pending) return { ok: false, reason: "unknown" };
  if (pending.expires <= now) return { ok: false, reason: "expired", pending };
  return { ok: true, pending };
}

/** The tokens of one list, stored in its state file, expiring after the list's `confirm_expires`. */
export class ConfirmTokens {
  constructor(
    private readonly store: ListStateStore,
    private readonly list: Pick<ListConfig, "confirm_expires">,
  ) {}

  create(action: TokenAction, address: string, now: number = Date.now()): Promise<string> {
    return this.store.update((s) => addToken(s, action, address, now, this.list.confirm_expires));
  }

  consume(token: string, now: number = Date.now()): Promise<ConsumeResult> {
    return this.store.update((s) => takeToken(s, token, now));
  }

  /** Look without consuming (e.g. to word a reply). */
  async peek(token: string): Promise<PendingAction | undefined> {
    const s = await this.store.read();
    return isTokenSyntax(token) && Object.hasOwn(s.tokens, token) ? s.tokens[token] : undefined;
  }
}
