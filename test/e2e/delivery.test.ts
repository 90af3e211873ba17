/**
 * Delivery end to end, no faults: real outgoing (and incoming, backoff) worker processes over weighted
 * slices, real SMTP sinks. The weighted split holds, every (Message-ID, recipient) arrives exactly once,
 * and transactions respect smtp.max_recipients.
 */
import { describe, expect, it } from "vitest";
import { sliceOf } from "../../src/queue/slice.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { logLines, message, runCli, spawnCli, waitFor } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";
import {
  allDeliveries,
  deliverySite,
  enqueueOutgoing,
  linesWith,
  notExactlyOnce,
  waitDelivered,
  waitDrained,
  WEIGHTED,
  type DeliverySite,
} from "./delivery-harness.js";

const t = testScope();

/** Hosts a and b weighted 3:1, smtp.max_recipients, and dev@ open to anyone, with these members. */
const devSite = (members: string[], maxRecipients: number): Promise<DeliverySite> =>
  deliverySite({
    hosts: WEIGHTED,
    smtp: `  max_recipients: ${maxRecipients}\n`,
    lists: [{ address: "dev@example.org", members, extra: "archive: false\nnonmembers: accept" }],
  });

describe("weighted outgoing slices", () => {
  it("weights 3 and 1: 4,000 entries split 3:1 (5 sigma), each delivered once, by its slice's host", async () => {
    const ds = t.own(
      await deliverySite({
        hosts: WEIGHTED,
      }),
    );
    await ds.start("outgoing", "0/2:3,1");
    await ds.start("outgoing", "1/2:3,1");
    await ds.start("backoff");
    const n = 4000;
    const sent = await enqueueOutgoing(ds.site, "w", n);
    await waitDelivered(ds.sinks.values(), sent.keys);
    await waitDrained(ds.site);
    await ds.stop();

    expect(notExactlyOnce(ds.sinks.values(), sent.keys)).toEqual([]);
    expect(allDeliveries(ds.sinks.values()).size).toBe(n);
    const a = ds.sink("a");
    const b = ds.sink("b");
    const sigma = Math.sqrt(n * 0.75 * 0.25);
    console.info(
      `weights 3:1 over ${n}: a=${a.deliveryCount()} b=${b.deliveryCount()} (expected 3000 +- ${(5 * sigma).toFixed(0)})`,
    );
    expect(a.deliveryCount() + b.deliveryCount()).toBe(n);
    expect(Math.abs(a.deliveryCount() - n * 0.75)).toBeLessThanOrEqual(5 * sigma);
    // deterministic too: each entry went to the host whose weighted share holds its sha1
    const misrouted = sent.ids.filter((id, i) => {
      const host = sliceOf(id, 2, [3, 1]) === 0 ? a : b;
      return host.deliveries().get(sent.keys[i] ?? "") !== 1;
    });
    expect(misrouted).toEqual([]);
    // with both hosts up nothing is retried
    expect(linesWith(ds.logs(), "delivery attempt").filter((l) => l["runner"] === "backoff")).toEqual([]);
  });
});

describe("posts through incoming", () => {
  it("fan-out respects smtp.max_recipients, and no member gets a post twice", async () => {
    const members = Array.from({ length: 60 }, (_, i) => `m${i}@example.net`);
    const ds = t.own(await devSite(members, 7));
    await ds.start("incoming");
    await ds.start("outgoing", "0/2:3,1");
    await ds.start("outgoing", "1/2:3,1");
    await ds.start("backoff");

    // posts through `qrunner inject`, as an MTA would hand them over
    const posts = Array.from({ length: 8 }, (_, i) => `<post-${i}@test.example>`);
    for (const id of posts) {
      const r = await runCli(["inject", "-C", ds.site.configFile, "--to=dev@example.org"], {
        input: message({ id }),
      });
      expect(r.code, r.stderr).toBe(0);
    }
    // and outgoing entries larger than max_recipients: the delivery layer splits them
    const big = await enqueueOutgoing(ds.site, "big", 10, (i) =>
      Array.from({ length: 30 }, (_, j) => `big${i}-${j}@example.com`),
    );
    const keys = [...posts.flatMap((id) => members.map((m) => `${id} ${m}`)), ...big.keys];
    await waitDelivered(ds.sinks.values(), keys);
    await waitDrained(ds.site, ["incoming", "outgoing", "backoff"]);
    await ds.stop();

    expect(notExactlyOnce(ds.sinks.values(), keys)).toEqual([]);
    expect(allDeliveries(ds.sinks.values()).size).toBe(keys.length);
    const sizes = [...ds.sinks.values()].flatMap((s) => s.messages.map((m) => m.to.length));
    console.info(`max_recipients 7: ${sizes.length} transactions, largest ${Math.max(...sizes)}`);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(7);
    // 8 posts x ceil(60/7) entries + 10 x ceil(30/7) transactions
    expect(sizes).toHaveLength(8 * 9 + 10 * 5);
  });
});

describe("through the master", () => {
  it("`qrunner start` runs one outgoing worker per weighted primary, and posts reach every member once", async () => {
    const members = Array.from({ length: 40 }, (_, i) => `m${i}@example.net`);
    const ds = t.own(await devSite(members, 10));
    const master = spawnCli(["start", "-C", ds.site.configFile]);
    try {
      await waitFor("all workers ready", () => master.stdout().includes('"msg":"all workers ready"'));
      const incoming = await Switchboard.open({ root: ds.site.qfiles, queue: "incoming" });
      const posts = Array.from({ length: 100 }, (_, i) => `<master-${i}@test.example>`);
      await incoming.enqueueMany(
        posts.map((id) => ({
          message: message({ id }),
          meta: {
            sender: "alice@example.net",
            recipients: ["dev@example.org"],
            to: "dev@example.org",
            list: "dev@example.org",
            kind: "post",
          },
        })),
      );
      incoming.close();
      const keys = posts.flatMap((id) => members.map((m) => `${id} ${m}`));
      await waitDelivered(ds.sinks.values(), keys);
      await waitDrained(ds.site, ["incoming", "outgoing", "backoff"]);
      master.child.kill("SIGTERM");
      expect((await master.exited).code, master.stderr()).toBe(0);

      expect(notExactlyOnce(ds.sinks.values(), keys)).toEqual([]);
      // the master's plan: slice 0/2:3,1 serves a, 1/2:3,1 serves b
      const attempts = logLines(master.stdout()).filter(
        (l) => l["msg"] === "delivery attempt" && l["runner"] === "outgoing",
      );
      expect(attempts).toHaveLength(100 * 4);
      const pairs = new Set(attempts.map((l) => `${String(l["slice"])} ${String(l["host"])}`));
      expect(pairs).toEqual(new Set(["0/2:3,1 a", "1/2:3,1 b"]));
      console.info(
        `master: a=${ds.sink("a").transactions} b=${ds.sink("b").transactions} transactions of 400`,
      );
    } finally {
      if (master.child.exitCode === null) master.child.kill("SIGKILL");
    }
  });
});
