import { describe, expect, it } from "vitest";
import { MAX_REPLY_ADDRESSES, takeRejectionSlot, takeReplySlot } from "../../src/lists/replies.js";
import { emptyState } from "../../src/lists/state-shape.js";
import { MAX_TOKENS, addToken } from "../../src/lists/tokens.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function recorder(): { warn(obj: object, msg: string): void; lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (_o, msg) => lines.push(msg) };
}

describe("rejection notices", () => {
  it("share the poster's reply budget and a cap per list and hour", () => {
    const s = emptyState();
    const limits = { maxPerHour: 5, perAddress: 2 };
    const t0 = 1_000_000;
    // one address: its reply budget (2), whether the time went to commands or rejections
    expect(takeReplySlot(s, "joe@example.com", t0, 2)).toBe(true);
    expect(takeRejectionSlot(s, "joe@example.com", t0, limits)).toBe(true);
    expect(takeRejectionSlot(s, "joe@example.com", t0, limits)).toBe(false);
    // the list: 5 an hour to anyone
    const sent = Array.from({ length: 10 }, (_, i) =>
      takeRejectionSlot(s, `x${i}@forged.example`, t0 + i, limits),
    );
    expect(sent.filter(Boolean)).toHaveLength(4);
    expect(s.rejections).toMatchObject({ suppressed: 7 });
    // an hour later the cap is free again
    expect(takeRejectionSlot(s, "y@forged.example", t0 + HOUR + 10, limits)).toBe(true);
    expect(s.rejections?.sent).toHaveLength(1);
  });

  it("1,000 distinct forged senders: bounded notices and bounded state", () => {
    const s = emptyState();
    let sent = 0;
    for (let i = 0; i < 1000; i++)
      if (takeRejectionSlot(s, `v${i}@forged.example`, 5_000 + i, { maxPerHour: 20, perAddress: 5 })) sent++;
    expect(sent).toBe(20);
    expect(Object.keys(s.replies)).toHaveLength(20);
    expect(JSON.stringify(s).length).toBeLessThan(4096);
  });
});

describe("size caps", () => {
  it(`reply records: at most ${MAX_REPLY_ADDRESSES} addresses, the least recently answered dropped and logged`, () => {
    const s = emptyState();
    const log = recorder();
    for (let i = 0; i < 1000; i++)
      expect(takeReplySlot(s, `a${i}@example.net`, 10_000 + i, 5, log)).toBe(true);
    const kept = Object.keys(s.replies);
    expect(kept).toHaveLength(MAX_REPLY_ADDRESSES);
    expect(kept).toContain("a999@example.net");
    expect(kept).not.toContain("a0@example.net");
    expect(log.lines).toHaveLength(1000 - MAX_REPLY_ADDRESSES);
  });

  it(`confirmation tokens: at most ${MAX_TOKENS} per list, the oldest dropped and logged`, () => {
    const s = emptyState();
    const log = recorder();
    const tokens = Array.from({ length: 1000 }, (_, i) =>
      addToken(s, "join", `u${i}@example.net`, i, DAY, log),
    );
    expect(Object.keys(s.tokens)).toHaveLength(MAX_TOKENS);
    expect(Object.hasOwn(s.tokens, tokens[999]!)).toBe(true);
    expect(Object.hasOwn(s.tokens, tokens[0]!)).toBe(false);
    expect(log.lines.length).toBe(1000 - MAX_TOKENS);
  });
});
