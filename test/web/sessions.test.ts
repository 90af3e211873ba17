/** Sessions (random ids, CSRF token, idle and absolute expiry, bound) and the login rate limit. */
import { describe, expect, it } from "vitest";
import { LoginLimiter } from "../../src/web/ratelimit.js";
import { SessionStore, csrfOk, sameToken, sessionCookie, sessionIdFrom } from "../../src/web/sessions.js";

const op = { kind: "operator", name: "root" } as const;

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe("SessionStore", () => {
  it("gives each session its own unguessable id and CSRF token", () => {
    const store = new SessionStore();
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const s = store.create(op);
      expect(s.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(s.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(seen.has(s.id) || seen.has(s.csrf)).toBe(false);
      seen.add(s.id).add(s.csrf);
    }
    expect(store.get("not-a-session")).toBeNull();
    expect(store.get(undefined)).toBeNull();
  });

  it("ends a session unused for idleMs, and any session maxAgeMs after login", () => {
    const c = clock();
    const store = new SessionStore({ idleMs: 1000, maxAgeMs: 5000, now: c.now });
    const a = store.create(op);
    const b = store.create(op);
    c.advance(900);
    expect(store.get(a.id)).not.toBeNull(); // a's idle clock restarts, b's does not
    c.advance(200);
    expect(store.get(b.id)).toBeNull();
    expect(store.get(a.id)).not.toBeNull();
    for (let i = 0; i < 4; i++) {
      c.advance(900);
      expect(store.get(a.id)).not.toBeNull();
    }
    c.advance(900); // 5,600 ms after login: past the absolute lifetime although used
    expect(store.get(a.id)).toBeNull();
  });

  it("keeps at most `max` sessions, dropping the oldest", () => {
    const store = new SessionStore({ max: 3 });
    const ids = [1, 2, 3, 4].map(() => store.create(op).id);
    expect(store.size).toBe(3);
    expect(store.get(ids[0])).toBeNull();
    expect(store.get(ids[3])).not.toBeNull();
  });

  it("destroy ends a session", () => {
    const store = new SessionStore();
    const s = store.create(op);
    store.destroy(s.id);
    expect(store.get(s.id)).toBeNull();
  });
});

describe("CSRF token and cookie", () => {
  it("accepts the session's own token only", () => {
    const store = new SessionStore();
    const s = store.create(op);
    const other = store.create(op);
    expect(csrfOk(s, s.csrf)).toBe(true);
    expect(csrfOk(s, undefined)).toBe(false);
    expect(csrfOk(s, "")).toBe(false);
    expect(csrfOk(s, other.csrf)).toBe(false);
    expect(csrfOk(s, s.csrf.slice(0, -1))).toBe(false);
    expect(csrfOk(s, s.csrf + "x")).toBe(false);
    expect(sameToken("é", "e\u0301")).toBe(false);
  });

  it("sets HttpOnly, SameSite=Strict cookies and reads them back", () => {
    const s = new SessionStore().create(op);
    const set = sessionCookie(s, 3_600_000);
    expect(set).toBe(`qrunner_session=${s.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600`);
    expect(sessionCookie(null, 0)).toContain("Max-Age=0");
    expect(sessionIdFrom(`theme=dark; qrunner_session=${s.id}; x=y`)).toBe(s.id);
    expect(sessionIdFrom("theme=dark")).toBeUndefined();
    expect(sessionIdFrom(undefined)).toBeUndefined();
  });
});

describe("LoginLimiter", () => {
  it("refuses an account after perAccount failures within the window, from any address", () => {
    const c = clock();
    const l = new LoginLimiter({ perAccount: 3, perIp: 100, windowMs: 60_000, now: c.now });
    for (let i = 0; i < 3; i++) {
      expect(l.allowed(`10.0.0.${i}`, "root")).toBe(true);
      l.failed(`10.0.0.${i}`, "root");
    }
    expect(l.allowed("10.0.0.99", "root")).toBe(false);
    expect(l.allowed("10.0.0.99", "ROOT")).toBe(false);
    expect(l.allowed("10.0.0.99", "someone-else")).toBe(true);
    c.advance(60_001);
    expect(l.allowed("10.0.0.99", "root")).toBe(true);
  });

  it("refuses an address after perIp failures, whatever account it tries", () => {
    const c = clock();
    const l = new LoginLimiter({ perAccount: 100, perIp: 4, windowMs: 60_000, now: c.now });
    for (let i = 0; i < 4; i++) l.failed("192.0.2.7", `user${i}`);
    expect(l.allowed("192.0.2.7", "fresh")).toBe(false);
    expect(l.allowed("192.0.2.8", "fresh")).toBe(true);
  });

  it("a success clears the account's count; memory stays bounded under a flood", () => {
    const c = clock();
    const l = new LoginLimiter({ perAccount: 2, perIp: 1000, maxKeys: 50, now: c.now });
    l.failed("a", "root");
    l.succeeded("root");
    l.failed("a", "root");
    expect(l.allowed("a", "root")).toBe(true);
    for (let i = 0; i < 10_000; i++) l.failed(`ip${i}`, `acct${i}`);
    expect((l as unknown as { failures: Map<string, number[]> }).failures.size).toBeLessThanOrEqual(50);
  });
});
