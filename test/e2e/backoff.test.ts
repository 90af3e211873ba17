/**
 * Per-recipient failures end to end, with real outgoing and backoff workers and real SMTP sinks: a 4xx
 * retries only its recipient until it gets through, a 5xx becomes a bounce event without a retry, and
 * backoff.max_age gives up with bounce events and one notice to the list's owners.
 */
import { describe, expect, it } from "vitest";
import { message, runCli, waitFor } from "../helpers/site.js";
import type { Sink } from "../helpers/smtp-sink.js";
import { testScope } from "../helpers/scope.js";
import {
  allDeliveries,
  deliverySite,
  enqueueOutgoing,
  entries,
  linesWith,
  notExactlyOnce,
  waitDelivered,
  waitDrained,
  type DeliverySite,
  WEIGHTED,
} from "./delivery-harness.js";

const t = testScope();

/** Answer `code` to RCPT TO of the addresses `match` picks, on every sink; counts the refusals. */
function refuse(sinks: Iterable<Sink>, match: (a: string) => boolean, code: number): Map<string, number> {
  const refused = new Map<string, number>();
  for (const s of sinks) {
    s.setFaults({
      rcpt: (a) => {
        if (!match(a)) return undefined;
        refused.set(a, (refused.get(a) ?? 0) + 1);
        return code;
      },
    });
  }
  return refused;
}

async function startAll(d: DeliverySite): Promise<void> {
  await d.start("outgoing", "0/2:3,1");
  await d.start("outgoing", "1/2:3,1");
  await d.start("backoff");
}

describe("temporary failures (4xx)", () => {
  it("only the refused recipients are retried, and delivered once the fault is lifted", async () => {
    const ds = t.own(await deliverySite({ hosts: WEIGHTED }));
    const n = 100;
    const slow = (a: string): boolean => a.startsWith("slow-");
    const refused = refuse(ds.sinks.values(), slow, 451);
    await startAll(ds);
    const sent = await enqueueOutgoing(ds.site, "t", n, (i) => [
      `ok-${i}-1@example.net`,
      `slow-${i}@example.net`,
      `ok-${i}-2@example.net`,
    ]);
    const okKeys = sent.keys.filter((k) => !k.includes(" slow-"));
    await waitDelivered(ds.sinks.values(), okKeys);
    // every refused recipient has been retried at least once before the fault is lifted
    await waitFor(
      "a retry of every refused recipient",
      () => refused.size === n && [...refused.values()].every((c) => c >= 2),
    );
    for (const s of ds.sinks.values()) s.clearFaults();
    await waitDelivered(ds.sinks.values(), sent.keys);
    await waitDrained(ds.site);
    await ds.stop();

    expect(notExactlyOnce(ds.sinks.values(), sent.keys)).toEqual([]);
    // the retries carried the refused recipient alone, never the ones already served
    const retried = [...ds.sinks.values()].flatMap((s) => s.messages).filter((m) => m.to.some(slow));
    expect(retried).toHaveLength(n);
    expect(retried.filter((m) => m.to.length !== 1)).toEqual([]);
    const attempts = [...refused.values()];
    console.info(
      `4xx: ${n} refused recipients, refused ${Math.min(...attempts)}..${Math.max(...attempts)} times each, then delivered once`,
    );
    const scheduled = linesWith(ds.logs(), "temporary failure; retry scheduled");
    expect(scheduled.length).toBeGreaterThanOrEqual(2 * n);
    expect(scheduled.filter((l) => l["recipients"] !== 1)).toEqual([]);
    expect(await entries(ds.site, "bounce")).toEqual([]);
  });
});

describe("permanent failures (5xx)", () => {
  it("become bounce events for the recipient, with no retry", async () => {
    const ds = t.own(await deliverySite({ hosts: WEIGHTED }));
    const n = 60;
    const gone = (a: string): boolean => a.startsWith("gone-");
    const refused = refuse(ds.sinks.values(), gone, 550);
    // and a few messages refused after the data: every recipient of those fails permanently
    const rejected = new Set(["<x-7@test.example>", "<x-23@test.example>"]);
    for (const s of ds.sinks.values()) {
      s.setFaults({
        data: (m) =>
          rejected.has(
            m.raw
              .toString()
              .match(/^Message-ID: (.*)$/m)?.[1]
              ?.trim() ?? "",
          )
            ? 554
            : undefined,
      });
    }
    await startAll(ds);
    const sent = await enqueueOutgoing(ds.site, "x", n, (i) => [
      `ok-${i}@example.net`,
      `gone-${i}@example.net`,
    ]);
    const okKeys = sent.keys.filter((k) => k.includes(" ok-") && !rejected.has(k.split(" ")[0] ?? ""));
    await waitDelivered(ds.sinks.values(), okKeys);
    const expectedEvents = n + rejected.size;
    await waitFor(
      "the bounce events",
      async () => (await entries(ds.site, "bounce")).length >= expectedEvents,
    );
    await waitDrained(ds.site);
    await ds.stop();

    expect(notExactlyOnce(ds.sinks.values(), okKeys)).toEqual([]);
    expect(allDeliveries(ds.sinks.values()).size).toBe(okKeys.length);
    // each refused once: no retry
    expect(refused.size).toBe(n);
    expect([...refused.values()].filter((c) => c !== 1)).toEqual([]);
    expect(linesWith(ds.logs(), "delivery attempt").filter((l) => l["runner"] === "backoff")).toEqual([]);

    const events = await entries(ds.site, "bounce");
    expect(events).toHaveLength(expectedEvents);
    const byRecipient = new Map(events.map((e) => [e.meta?.recipients[0] ?? "", e]));
    const want = [
      ...Array.from({ length: n }, (_, i) => `gone-${i}@example.net`),
      ...[...rejected].map((id) => `ok-${/^<x-(\d+)@/.exec(id)?.[1] ?? ""}@example.net`),
    ];
    expect(new Set(byRecipient.keys())).toEqual(new Set(want));
    for (const e of events) {
      expect(e.meta?.kind).toBe("bounce-event");
      expect(e.meta?.list).toBe("dev@example.org");
      expect(e.meta?.recipients).toHaveLength(1);
      const ev = e.meta?.extra?.["event"] as { recipient: string; kind: string; code?: number };
      expect(ev.recipient).toBe(e.meta?.recipients[0]);
      expect(ev.kind).toBe("permanent");
      expect([550, 554]).toContain(ev.code);
    }
    console.info(`5xx: ${events.length} bounce events, ${okKeys.length} delivered, 0 retries`);
  });
});

describe("backoff.max_age", () => {
  it("gives up with a bounce event per recipient and one notice to the owners", async () => {
    const members = Array.from({ length: 5 }, (_, i) => `m${i + 1}@example.net`);
    const ds = t.own(
      await deliverySite({
        hosts: WEIGHTED,
        backoff: "schedule: [200ms], max_age: 2s, jitter: 0",
        lists: [
          {
            address: "dev@example.org",
            owners: ["owner@example.org"],
            members,
            extra: "archive: false\nnonmembers: accept",
          },
        ],
      }),
    );
    const refused = refuse(ds.sinks.values(), (a) => a.startsWith("m"), 451);
    await ds.start("incoming");
    await startAll(ds);
    const r = await runCli(["inject", "-C", ds.site.configFile, "--to=dev@example.org"], {
      input: message({ id: "<old@test.example>", subject: "never arrives" }),
    });
    expect(r.code, r.stderr).toBe(0);

    const toOwner = (): number =>
      [...ds.sinks.values()].flatMap((s) => s.messages).filter((m) => m.to.includes("owner@example.org"))
        .length;
    await waitFor("the owner notice", () => toOwner() > 0, 30_000);
    await waitDrained(ds.site, ["incoming", "outgoing", "backoff"]);
    // a little longer: nothing more may arrive
    await new Promise((res) => setTimeout(res, 1000));
    await ds.stop();

    expect(toOwner()).toBe(1);
    const notice = [...ds.sinks.values()]
      .flatMap((s) => s.messages)
      .find((m) => m.to.includes("owner@example.org"));
    const text = notice?.raw.toString() ?? "";
    expect(text).toMatch(/^Subject: .*delivery given up for 5 recipient/m);
    expect(text).toContain("<old@test.example>");
    for (const m of members) expect(text).toContain(m);
    expect(allDeliveries(ds.sinks.values()).size).toBe(1);

    const events = await entries(ds.site, "bounce");
    expect(events.map((e) => e.meta?.recipients[0]).sort()).toEqual(members);
    for (const e of events) expect(e.meta?.kind).toBe("bounce-event");
    const gaveUp = linesWith(ds.logs(), "delivery given up");
    expect(gaveUp).toHaveLength(1);
    const tries = Math.min(...members.map((m) => refused.get(m) ?? 0));
    console.info(
      `max_age 2s: ${tries} tries per member, then ${events.length} bounce events and 1 owner notice`,
    );
    expect(tries).toBeGreaterThanOrEqual(2);
  });
});
