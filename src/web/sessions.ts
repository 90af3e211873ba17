/**
 * Console sessions, in memory (a restart logs everyone out, which is fine for a console): a random
 * 256-bit id in an HttpOnly, SameSite=Strict cookie, a per-session CSRF token that every POST must
 * carry (compared in constant time), an idle timeout and an absolute lifetime. The store is bounded:
 * past `max` sessions the oldest goes first.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Principal } from "./access.js";

export const SESSION_COOKIE = "qrunner_session";

export interface Session {
  readonly id: string;
  readonly csrf: string;
  readonly principal: Principal;
  readonly createdAt: number;
  lastSeen: number;
  /** a one-line result of the last action, shown once on the next page */
  flash?: { text: string; error: boolean } | undefined;
}

export interface SessionOptions {
  /** a session unused this long ends (ms) */
  idleMs?: number;
  /** a session ends this long after login, used or not (ms) */
  maxAgeMs?: number;
  max?: number;
  now?: () => number;
}

function token(): string {
  return randomBytes(32).toString("base64url");
}

/** `a === b` in time independent of where they differ (lengths may leak; both are fixed-length tokens). */
export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  readonly idleMs: number;
  readonly maxAgeMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(opts: SessionOptions = {}) {
    this.idleMs = opts.idleMs ?? 30 * 60_000;
    this.maxAgeMs = opts.maxAgeMs ?? 12 * 3600_000;
    this.max = opts.max ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  create(principal: Principal): Session {
    const now = this.now();
    this.sweep(now);
    while (this.sessions.size >= this.max) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const s: Session = { id: token(), csrf: token(), principal, createdAt: now, lastSeen: now };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session with this id (its idle clock restarted), or null. */
  get(id: string | undefined): Session | null {
    if (id === undefined) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    const now = this.now();
    if (this.expired(s, now)) {
      this.sessions.delete(id);
      return null;
    }
    s.lastSeen = now;
    return s;
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private expired(s: Session, now: number): boolean {
    return now - s.lastSeen > this.idleMs || now - s.createdAt > this.maxAgeMs;
  }

  private sweep(now: number): void {
    for (const [id, s] of this.sessions) if (this.expired(s, now)) this.sessions.delete(id);
  }
}

/** True when `sent` (the form's `csrf` field) is this session's token. */
export function csrfOk(session: Session, sent: string | undefined): boolean {
  return sent !== undefined && sameToken(session.csrf, sent);
}

/** The Set-Cookie value for a session (or, with null, one that removes the cookie). */
export function sessionCookie(session: Session | null, maxAgeMs: number): string {
  const attrs = "Path=/; HttpOnly; SameSite=Strict";
  if (!session) return `${SESSION_COOKIE}=; ${attrs}; Max-Age=0`;
  return `${SESSION_COOKIE}=${session.id}; ${attrs}; Max-Age=${Math.floor(maxAgeMs / 1000)}`;
}

/** The session id from a Cookie header; the first cookie of that name wins. */
export function sessionIdFrom(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined) return undefined;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}
