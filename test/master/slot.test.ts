import { describe, expect, it } from "vitest";
import { backoffDelay, newSlot, stallReason } from "../../src/master/slot.js";
import { planWorkers } from "../../src/master/plan.js";
import { configSchema } from "../../src/config/schema.js";

const spec = planWorkers(configSchema.parse({}))[0]!;
const LIMIT = 60_000;

function readySlot(now: number) {
  return Object.assign(newSlot(spec), { state: "ready" as const, startedAt: now - 1000, lastMessageAt: now });
}

describe("backoffDelay", () => {
  it("starts at the base, doubles, and stops at the cap", () => {
    expect([0, 1, 2, 3, 6, 7, 20].map((n) => backoffDelay(n, 1000, 60_000))).toEqual([
      1000, 2000, 4000, 8000, 60_000, 60_000, 60_000,
    ]);
  });
});

describe("stallReason", () => {
  const now = 10_000_000;

  it("is null for a worker with heartbeats and nothing due", () => {
    const s = readySlot(now);
    s.hb = { type: "heartbeat", handled: 0, failed: 0, lastProgress: now - 10 * LIMIT, due: 0, inHand: 0 };
    expect(stallReason(s, now, LIMIT)).toBeNull();
  });

  it("counts from when entries became due, not from an old last progress", () => {
    const s = readySlot(now);
    s.hb = { type: "heartbeat", handled: 0, failed: 0, lastProgress: now - 10 * LIMIT, due: 3, inHand: 0 };
    s.dueSince = now - 1000;
    expect(stallReason(s, now, LIMIT)).toBeNull();
    s.dueSince = now - LIMIT - 1;
    expect(stallReason(s, now, LIMIT)).toMatch(/^3 entries due and no progress for /);
  });

  it("flags stopped heartbeats and a worker never ready", () => {
    const s = readySlot(now);
    s.lastMessageAt = now - LIMIT - 1;
    expect(stallReason(s, now, LIMIT)).toMatch(/^no heartbeat for /);
    const starting = Object.assign(newSlot(spec), { startedAt: now - LIMIT - 1 });
    expect(stallReason(starting, now, LIMIT)).toMatch(/^not ready /);
  });
});
