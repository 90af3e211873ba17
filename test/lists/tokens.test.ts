import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ListStateStore } from "../../src/lists/state.js";
import { emptyState } from "../../src/lists/state-shape.js";
import {
  ConfirmTokens,
  MAX_TOKENS,
  addModerationToken,
  addToken,
  isTokenSyntax,
  pruneTokens,
  takeToken,
} from "../../src/lists/tokens.js";

let tmp: string;
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qrunner-tokens-"));
});
afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

const DAY = 86_400_000;

describe("tokens on a state", () => {
  it("are random, URL-safe and at least 20 characters", () => {
    const s = emptyState();
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const t = addToken(s, "join", `u${i}@example.net`, 0, DAY);
      expect(t).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      expect(isTokenSyntax(t)).toBe(true);
      seen.add(t);
    }
    expect(seen.size).toBe(200);
  });

  it("are consumed once", () => {
    const s = emptyState();
    const t = addToken(s, "leave", "Alice@Example.NET", 1000, DAY);
    expect(takeToken(s, t, 2000)).toEqual({
      ok: true,
      pending: { action: "leave", address: "Alice@example.net", created: 1000, expires: 1000 + DAY },
    });
    expect(takeToken(s, t, 2000)).toEqual({ ok: false, reason: "unknown" });
  });

  it("expire", () => {
    const s = emptyState();
    const t = addToken(s, "join", "a@example.net", 1000, DAY);
    const r = takeToken(s, t, 1000 + DAY);
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ reason: "expired", pending: { address: "a@example.net" } });
    expect(takeToken(s, t, 1000)).toEqual({ ok: false, reason: "unknown" });
  });

  it("refuse what is no token, including prototype names", () => {
    const s = emptyState();
    for (const t of ["", "short", "constructor", "__proto__", "x".repeat(200), "a/b/c/d/e/f/g/h/i/j/k/l"]) {
      expect(takeToken(s, t, 0)).toEqual({ ok: false, reason: "unknown" });
    }
  });

  it("prune expired ones and keep at most 3 pending per address and action", () => {
    const s = emptyState();
    const first = addToken(s, "join", "a@example.net", 0, 10);
    pruneTokens(s, 5);
    expect(Object.keys(s.tokens)).toEqual([first]);
    expect(pruneTokens(s, 10)).toBe(1);
    const ts = [1, 2, 3, 4, 5].map((n) => addToken(s, "join", "a@example.net", n, DAY));
    addToken(s, "leave", "a@example.net", 6, DAY);
    expect(Object.keys(s.tokens)).toHaveLength(4);
    expect(takeToken(s, ts[0]!, 7).ok).toBe(false);
    expect(takeToken(s, ts[4]!, 7).ok).toBe(true);
  });
});

describe("moderation tokens", () => {
  it("are 40 lowercase hex digits bound to a held id, taken once, and survive a state file round trip", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    const t = await store.update((s) => addModerationToken(s, "7k2m9qx4ab", 1000, DAY));
    expect(t).toMatch(/^[0-9a-f]{40}$/);
    expect(isTokenSyntax(t)).toBe(true);
    const s = await store.read();
    expect(s.tokens[t]).toEqual({
      action: "moderate",
      held: "7k2m9qx4ab",
      created: 1000,
      expires: 1000 + DAY,
    });
    expect(takeToken(s, t, 2000)).toMatchObject({
      ok: true,
      pending: { action: "moderate", held: "7k2m9qx4ab" },
    });
    expect(takeToken(s, t, 2000)).toEqual({ ok: false, reason: "unknown" });
  });

  it("are capped apart from join/leave tokens: a flood of one kind never pushes out the other", () => {
    const s = emptyState();
    const join = addToken(s, "join", "a@example.net", 0, DAY);
    const first = addModerationToken(s, "0000000000", 1, DAY);
    for (let i = 0; i < MAX_TOKENS + 10; i++) addModerationToken(s, "1111111111", 2 + i, DAY);
    expect(Object.hasOwn(s.tokens, join)).toBe(true);
    expect(Object.hasOwn(s.tokens, first)).toBe(false);
    expect(Object.values(s.tokens).filter((p) => p.action === "moderate")).toHaveLength(MAX_TOKENS);
    const mod = Object.keys(s.tokens).find((t) => t !== join)!;
    for (let i = 0; i < MAX_TOKENS + 10; i++) addToken(s, "join", `u${i}@example.net`, 10_000 + i, DAY);
    expect(Object.hasOwn(s.tokens, mod)).toBe(true);
    expect(Object.values(s.tokens).filter((p) => p.action === "join")).toHaveLength(MAX_TOKENS);
  });
});

describe("ConfirmTokens", () => {
  it("stores tokens in the list state with the list's confirm_expires", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    const tokens = new ConfirmTokens(store, { confirm_expires: 3 * DAY });
    const t = await tokens.create("join", "bob@example.com", 10_000);
    expect((await store.read()).tokens[t]).toEqual({
      action: "join",
      address: "bob@example.com",
      created: 10_000,
      expires: 10_000 + 3 * DAY,
    });
    expect(await tokens.peek(t)).toMatchObject({ action: "join" });

    // a second store instance (another worker) sees it, and of two concurrent consumers exactly one wins
    const other = new ConfirmTokens(new ListStateStore(tmp, "dev@example.org"), { confirm_expires: 3 * DAY });
    const results = await Promise.all([tokens.consume(t, 20_000), other.consume(t, 20_000)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, reason: "unknown" }]);
    expect((await store.read()).tokens).toEqual({});
  });

  it("reports an expired token as expired, once", async () => {
    const tokens = new ConfirmTokens(new ListStateStore(tmp, "dev@example.org"), { confirm_expires: 1000 });
    const t = await tokens.create("leave", "bob@example.com", 0);
    expect(await tokens.consume(t, 1000)).toMatchObject({ ok: false, reason: "expired" });
    expect(await tokens.consume(t, 1000)).toEqual({ ok: false, reason: "unknown" });
  });
});
