/**
 * Backscatter and state growth (issue 15, finding 7): posts from 1,000 distinct forged senders to a
 * list with `nonmembers: reject` make at most the list's hourly cap of rejection notices, and the
 * list's state stays small. The posts are queued in `incoming` with the real Switchboard (as inject
 * would, without 1,000 processes) and handled by the real incoming runner process.
 */
import { stat } from "node:fs/promises";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Switchboard } from "../../src/queue/switchboard.js";
import { requireBuild } from "../helpers/site.js";
import { listSite, mail, type ListSite } from "./lists-harness.js";

beforeAll(() => requireBuild());

let s: ListSite | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

const FORGED = 1000;

describe("rejection notices to forged senders", () => {
  it(`${FORGED} distinct forged senders get at most max_rejections_per_hour notices; the state stays bounded`, async () => {
    s = await listSite([
      {
        address: "dev@example.org",
        owners: ["owner@example.org"],
        members: ["alice@example.net"],
        extra: "nonmembers: reject\nmax_rejections_per_hour: 20\nmax_replies_per_hour: 2",
      },
    ]);
    const incoming = await Switchboard.open({ root: s.site.qfiles, queue: "incoming" });
    try {
      for (let i = 0; i < FORGED; i++) {
        const sender = `victim${i}@forged${i % 7}.example`;
        await incoming.enqueue(mail({ from: sender, to: "dev@example.org", subject: `spam ${i}` }), {
          sender,
          recipients: ["dev@example.org"],
          to: "dev@example.org",
          list: "dev@example.org",
          kind: "post",
        });
      }
      // and one real victim named by many forged posts: its own budget holds
      for (let i = 0; i < 10; i++) {
        await incoming.enqueue(
          mail({ from: "joe@example.com", to: "dev@example.org", subject: `joe ${i}` }),
          {
            sender: "joe@example.com",
            recipients: ["dev@example.org"],
            to: "dev@example.org",
            list: "dev@example.org",
            kind: "post",
          },
        );
      }
    } finally {
      incoming.close();
    }
    await s.runOnce("incoming");
    expect(await s.entries("incoming")).toEqual([]);
    const notices = await s.peek("outgoing");
    expect(notices.length).toBe(20);
    for (const n of notices) expect(n.meta.kind).toBe("notice");
    const state = (await s.readState("dev@example.org")) as unknown as {
      replies: Record<string, number[]>;
      rejections: { sent: number[]; suppressed: number };
    };
    expect(state.rejections.sent).toHaveLength(20);
    expect(state.rejections.suppressed).toBe(FORGED + 10 - 20);
    expect(Object.keys(state.replies).length).toBeLessThanOrEqual(20);
    expect((await stat(s.stateFile("dev@example.org"))).size).toBeLessThan(16 * 1024);
    expect(s.logs.filter((l) => l.msg === "rejection notice held back (rate limit)")).toHaveLength(
      FORGED + 10 - 20,
    );
  }, 240_000);
});
