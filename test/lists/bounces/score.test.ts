import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BounceScoreError,
  SOFT_WEIGHT,
  applyBounce,
  bounceWeight,
  effectiveScore,
  policyFromList,
  utcDay,
  type BouncePolicy,
  type MemberBounceState,
} from "../../../src/lists/bounces/score.js";

const DAY = 86_400_000;
const T0 = Date.UTC(2025, 2, 11, 9, 0, 0); // Tue 11 Mar 2025 09:00 UTC
const policy: BouncePolicy = { threshold: 3, staleAfter: 7 * DAY, temporaryWeight: 0 };
const fresh = (): MemberBounceState => ({ score: 0 });

describe("applyBounce", () => {
  it("adds 1 for a permanent bounce and records the day", () => {
    const r = applyBounce(fresh(), { kind: "permanent", at: T0 }, policy);
    expect(r).toEqual({
      state: { score: 1, lastBounce: T0, lastCounted: "2025-03-11" },
      counted: true,
      disabledNow: false,
    });
  });

  it("counts at most once per UTC day", () => {
    let s = applyBounce(fresh(), { kind: "permanent", at: T0 }, policy).state;
    const again = applyBounce(s, { kind: "permanent", at: T0 + 3_600_000 }, policy);
    expect(again.counted).toBe(false);
    expect(again.state.score).toBe(1);
    expect(again.state.lastBounce).toBe(T0 + 3_600_000);
    // 23:59:59 is still the same UTC day, 00:00 the next one
    s = again.state;
    const lateSameDay = applyBounce(s, { kind: "permanent", at: Date.UTC(2025, 2, 11, 23, 59, 59) }, policy);
    expect(lateSameDay.counted).toBe(false);
    const nextDay = applyBounce(
      lateSameDay.state,
      { kind: "permanent", at: Date.UTC(2025, 2, 12, 0, 0, 0) },
      policy,
    );
    expect(nextDay.counted).toBe(true);
    expect(nextDay.state.score).toBe(2);
    expect(nextDay.state.lastCounted).toBe("2025-03-12");
  });

  it("does not count a late bounce for an earlier day twice, nor move lastBounce back", () => {
    const s = applyBounce(fresh(), { kind: "permanent", at: T0 + DAY }, policy).state;
    const late = applyBounce(s, { kind: "permanent", at: T0 }, policy);
    expect(late.counted).toBe(false);
    expect(late.state).toEqual({ score: 1, lastBounce: T0 + DAY, lastCounted: "2025-03-12" });
  });

  it("starts again from 0 when the last bounce is older than staleAfter", () => {
    let s = applyBounce(fresh(), { kind: "permanent", at: T0 }, policy).state;
    s = applyBounce(s, { kind: "permanent", at: T0 + DAY }, policy).state;
    expect(s.score).toBe(2);
    // exactly staleAfter later is not yet stale
    const notYet = applyBounce(s, { kind: "permanent", at: T0 + DAY + 7 * DAY }, policy);
    expect(notYet.state.score).toBe(3);
    const stale = applyBounce(s, { kind: "permanent", at: T0 + DAY + 7 * DAY + 1 }, policy);
    expect(stale).toMatchObject({ counted: true, disabledNow: false });
    expect(stale.state.score).toBe(1);
    expect(effectiveScore(s, T0 + DAY + 7 * DAY + 1, policy.staleAfter)).toBe(0);
    expect(effectiveScore(s, T0 + DAY + 1, policy.staleAfter)).toBe(2);
  });

  it("a stale reset also forgets the counted day, so the same day can count again", () => {
    const short: BouncePolicy = { ...policy, staleAfter: 3_600_000 };
    const s = applyBounce(fresh(), { kind: "permanent", at: T0 }, short).state;
    const r = applyBounce(s, { kind: "permanent", at: T0 + 2 * 3_600_000 }, short);
    expect(r).toMatchObject({ counted: true, state: { score: 1, lastCounted: "2025-03-11" } });
  });

  it("disables on reaching the threshold, and says so only on that transition", () => {
    let s = fresh();
    const outcomes = [];
    for (let d = 0; d < 5; d++) {
      const r = applyBounce(s, { kind: "permanent", at: T0 + d * DAY }, policy);
      outcomes.push(r.disabledNow);
      s = r.state;
    }
    expect(outcomes).toEqual([false, false, true, false, false]);
    expect(s.disabled).toEqual({ reason: "bounces", at: T0 + 2 * DAY });
    expect(s.score).toBe(5); // keeps counting for display
  });

  it("keeps another disable reason and never reports a transition for it", () => {
    const s: MemberBounceState = {
      score: 2,
      lastBounce: T0,
      lastCounted: "2025-03-11",
      disabled: { reason: "admin", at: T0 - DAY },
    };
    const r = applyBounce(s, { kind: "permanent", at: T0 + DAY }, policy);
    expect(r.disabledNow).toBe(false);
    expect(r.state.disabled).toEqual({ reason: "admin", at: T0 - DAY });
  });

  it("ignores temporary bounces at the default weight 0, entirely", () => {
    const s: MemberBounceState = { score: 2, lastBounce: T0, lastCounted: "2025-03-11" };
    const r = applyBounce(s, { kind: "temporary", at: T0 + 2 * DAY }, policy);
    expect(r).toEqual({ state: s, counted: false, disabledNow: false });
    // and so it does not keep the old score from going stale
    expect(effectiveScore(r.state, T0 + 8 * DAY, policy.staleAfter)).toBe(0);
  });

  it("adds temporaryWeight for a temporary bounce, once a day, and can disable with it", () => {
    const weighted: BouncePolicy = { threshold: 1, staleAfter: 7 * DAY, temporaryWeight: 0.1 };
    let s = fresh();
    let transitions = 0;
    for (let d = 0; d < 12; d++) {
      for (const h of [0, 1, 2]) {
        const r = applyBounce(s, { kind: "temporary", at: T0 + d * DAY + h * 3_600_000 }, weighted);
        expect(r.counted).toBe(h === 0);
        if (r.disabledNow) transitions++;
        s = r.state;
      }
    }
    expect(s.score).toBe(1.2); // no float noise from 0.1 steps
    expect(transitions).toBe(1);
    expect(s.disabled?.at).toBe(T0 + 9 * DAY);
  });

  it("one bounce a day counts, whichever kind comes first", () => {
    const weighted: BouncePolicy = { ...policy, temporaryWeight: 0.5 };
    const a = applyBounce(fresh(), { kind: "temporary", at: T0 }, weighted);
    const b = applyBounce(a.state, { kind: "permanent", at: T0 + 60_000 }, weighted);
    expect([a.counted, b.counted, b.state.score]).toEqual([true, false, 0.5]);
  });

  it("does not change its input and keeps fields it does not know", () => {
    const s = { score: 1, lastBounce: T0, lastCounted: "2025-03-11", note: "kept" } as MemberBounceState & {
      note: string;
    };
    const copy = structuredClone(s);
    const r = applyBounce(s, { kind: "permanent", at: T0 + DAY }, policy);
    expect(s).toEqual(copy);
    expect((r.state as typeof s).note).toBe("kept");
  });

  it("refuses policies and events it cannot score", () => {
    expect(() => applyBounce(fresh(), { kind: "permanent", at: Number.NaN }, policy)).toThrow(
      BounceScoreError,
    );
    expect(() => applyBounce(fresh(), { kind: "permanent", at: T0 }, { ...policy, threshold: 0 })).toThrow(
      /threshold/,
    );
    expect(() =>
      applyBounce(fresh(), { kind: "permanent", at: T0 }, { ...policy, temporaryWeight: -1 }),
    ).toThrow(/temporary_weight/);
    expect(() => applyBounce(fresh(), { kind: "bogus" as "permanent", at: T0 }, policy)).toThrow(/kind/);
  });

  it("never disables twice and never counts twice a day, whatever the sequence", () => {
    const event = fc.record({
      kind: fc.constantFrom("permanent" as const, "temporary" as const),
      at: fc.integer({ min: T0, max: T0 + 60 * DAY }),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 80 }), fc.constantFrom(0, 0.25, 1), (events, w) => {
        const p: BouncePolicy = { threshold: 3, staleAfter: 5 * DAY, temporaryWeight: w };
        let s = fresh();
        let transitions = 0;
        const countedDays = new Set<string>();
        for (const e of events.sort((x, y) => x.at - y.at)) {
          const r = applyBounce(s, e, p);
          if (r.disabledNow) transitions++;
          if (r.counted) {
            expect(countedDays.has(utcDay(e.at))).toBe(false);
            countedDays.add(utcDay(e.at));
          }
          expect(r.state.score).toBeGreaterThanOrEqual(0);
          s = r.state;
        }
        expect(transitions).toBeLessThanOrEqual(1);
        expect(transitions === 1).toBe(s.disabled !== undefined);
      }),
    );
  });
});

describe("scoring by reason", () => {
  it("weighs a user unknown 1, a full mailbox or any soft refusal 0.5, a delay temporaryWeight", () => {
    expect(bounceWeight("permanent", "userunknown", policy)).toBe(1);
    expect(bounceWeight("permanent", "hostunknown", policy)).toBe(1);
    expect(bounceWeight("temporary", "mailboxfull", policy)).toBe(SOFT_WEIGHT);
    expect(bounceWeight("temporary", "blocked", policy)).toBe(SOFT_WEIGHT);
    expect(bounceWeight("temporary", "undefined", policy)).toBe(SOFT_WEIGHT);
    expect(bounceWeight("temporary", "delayed", policy)).toBe(0);
    expect(bounceWeight("temporary", "delayed", { ...policy, temporaryWeight: 0.25 })).toBe(0.25);
    // without a reason, as callers did before reasons existed
    expect(bounceWeight("permanent", undefined, policy)).toBe(1);
    expect(bounceWeight("temporary", undefined, policy)).toBe(0);
  });

  it("a soft bounce never weighs more than a hard one, whatever softWeight says", () => {
    expect(bounceWeight("temporary", "mailboxfull", { ...policy, softWeight: 3 })).toBe(1);
    expect(bounceWeight("temporary", "mailboxfull", { ...policy, softWeight: 0.2 })).toBe(0.2);
  });

  it("disables a full mailbox after twice as many days as a user unknown", () => {
    const days = (reason: "userunknown" | "mailboxfull"): number => {
      let s = fresh();
      for (let d = 0; d < 20; d++) {
        const r = applyBounce(
          s,
          { kind: reason === "userunknown" ? "permanent" : "temporary", at: T0 + d * DAY },
          policy,
          reason,
        );
        s = r.state;
        if (r.disabledNow) return d + 1;
      }
      return Infinity;
    };
    expect(days("userunknown")).toBe(3);
    expect(days("mailboxfull")).toBe(6);
  });

  it("never disables on delays at the default weight", () => {
    let s = fresh();
    for (let d = 0; d < 30; d++) {
      const r = applyBounce(s, { kind: "temporary", at: T0 + d * DAY }, policy, "delayed");
      expect(r.counted).toBe(false);
      s = r.state;
    }
    expect(s).toEqual(fresh());
  });

  it("refuses a negative softWeight", () => {
    expect(() =>
      applyBounce(fresh(), { kind: "temporary", at: T0 }, { ...policy, softWeight: -1 }, "mailboxfull"),
    ).toThrow(/soft_weight/);
  });
});

describe("helpers", () => {
  it("utcDay is the UTC calendar day", () => {
    expect(utcDay(Date.UTC(2025, 0, 1, 0, 0, 0))).toBe("2025-01-01");
    expect(utcDay(Date.UTC(2024, 11, 31, 23, 59, 59, 999))).toBe("2024-12-31");
  });

  it("policyFromList maps the list file's bounce settings", () => {
    expect(policyFromList({ threshold: 5, stale_after: 7 * DAY, temporary_weight: 0 })).toEqual({
      threshold: 5,
      staleAfter: 7 * DAY,
      temporaryWeight: 0,
    });
    expect(
      policyFromList({ threshold: 5, stale_after: 7 * DAY, temporary_weight: 0, soft_weight: 0.25 })
        .softWeight,
    ).toBe(0.25);
  });
});
