/**
 * Forged bounces cannot disable members, and unrecognised bounces go somewhere (issue 14, items 3
 * and 4): signed VERP addresses through the daemon, forged ones refused at `inject` (67) and at LMTP
 * RCPT (550) and never scored, a forged entry that bypassed intake counted and not scored, bounce
 * probes (verp_probes), and unrecognised bounces forwarded to the owners within the hourly budget,
 * the rest in the digest, or discarded.
 */
import { readFile, writeFile } from "node:fs/promises";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { signedVerpAddress, VerpKeys } from "../../src/lists/verp.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { LmtpClient } from "../intake/lmtp-client.js";
import { logLines, requireBuild, runCli, spawnCli, waitFor, type Running } from "../helpers/site.js";
import { fixture, headerValues, listSite, mail, noticeText, type ListSite } from "./lists-harness.js";

beforeAll(() => requireBuild());

let s: ListSite | undefined;
let master: Running | undefined;
let client: LmtpClient | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  if (master && master.child.exitCode === null && master.child.signalCode === null) {
    master.child.kill("SIGTERM");
    await master.exited;
  }
  master = undefined;
  await s?.close();
  s = undefined;
});

const DAY = 86_400_000;
const DEV = { name: "dev", domain: "example.org", address: "dev@example.org" };

function key(site: ListSite): Buffer {
  return new VerpKeys().get(site.site.state);
}

interface MemberRow {
  address: string;
  state: "enabled" | "disabled";
  score: number;
}

async function rows(site: ListSite): Promise<Map<string, MemberRow>> {
  const r = await site.cli(["members", "dev@example.org", "--json"]);
  expect(r.code, r.stderr).toBe(0);
  return new Map((JSON.parse(r.stdout) as { members: MemberRow[] }).members.map((m) => [m.address, m]));
}

function subjects(site: ListSite, to: string): string[] {
  return site.to(to).map((m) => headerValues(m.raw, "subject")[0] ?? "");
}

/** Forged VERP addresses for alice: unsigned, a wrong tag, a stale date, bob's tag on alice's address. */
function forgeries(site: ListSite): Record<string, string> {
  const k = key(site);
  const real = signedVerpAddress(DEV, "alice@example.net", k, Date.now());
  const bobs = signedVerpAddress(DEV, "bob@example.com", k, Date.now());
  const bobTag = bobs.slice(bobs.lastIndexOf("+") + 1, bobs.indexOf("@"));
  return {
    unsigned: "dev-bounces+alice=example.net@example.org",
    "wrong tag": real.replace(/\+([a-z2-7]{2})[a-z2-7]{8}@/, "+$1aaaaaaaa@"),
    stale: signedVerpAddress(DEV, "alice@example.net", k, Date.now() - 30 * DAY),
    "other member's tag": `dev-bounces+alice=example.net+${bobTag}@example.org`,
    "no member": "dev-bounces+garbage@example.org",
  };
}

describe("signed VERP through the daemon", () => {
  it("forged VERP bounces are refused at inject (67) and LMTP RCPT (550) and never score; a real bounce of a real delivery disables", async () => {
    s = await listSite(
      [
        {
          address: "dev@example.org",
          owners: ["owner@example.org"],
          members: ["alice@example.net", "bob@example.com"],
          extra: "verp: true\nbounce: { threshold: 1 }",
        },
        { address: "plain@example.org", owners: ["owner@example.org"], members: ["alice@example.net"] },
      ],
      { config: "intake: { lmtp: 127.0.0.1:0 }\n" },
    );
    const site = s;
    master = spawnCli(["start", "-C", site.site.configFile]);
    const running = master;
    await waitFor("all workers ready", () =>
      logLines(running.stdout()).some((l) => l["msg"] === "all workers ready"),
    );
    const listening = logLines(running.stdout()).find((l) => l["msg"] === "LMTP listening");
    const port = Number(String(listening?.["address"]).split(":").pop());

    await site.inject(
      mail({ from: "alice@example.net", to: "dev@example.org", subject: "news", id: "<v1@x>" }),
      "dev@example.org",
    );
    await waitFor("two deliveries", () => site.sink.deliveryCount() >= 2);
    const senders = new Map(site.sink.messages.map((m) => [m.to.join(), m.from]));
    const aliceSender = senders.get("alice@example.net") ?? "";
    expect(aliceSender).toMatch(/^dev-bounces\+alice=example\.net\+[a-z2-7]{10}@example\.org$/);
    expect(senders.get("bob@example.com")).toMatch(
      /^dev-bounces\+bob=example\.com\+[a-z2-7]{10}@example\.org$/,
    );
    site.sink.clear();

    const bounce = await fixture("bounces", "qmail.eml");
    const forged = {
      ...forgeries(site),
      "verp: false list": signedVerpAddress(
        { name: "plain", domain: "example.org", address: "plain@example.org" },
        "alice@example.net",
        key(site),
        Date.now(),
      ),
    };
    for (const [what, to] of Object.entries(forged)) {
      const r = await runCli(["inject", "-C", site.site.configFile, `--to=${to}`, "--from=<>"], {
        input: bounce,
      });
      expect({ what, code: r.code }).toEqual({ what, code: 67 });
      expect(r.stderr, what).toMatch(/VERP|names no member/);
    }

    const c = (await LmtpClient.connect(port)).client;
    client = c;
    expect((await c.command("LHLO test")).code).toBe(250);
    expect((await c.command("MAIL FROM:<>")).code).toBe(250);
    for (const [what, to] of Object.entries(forged)) {
      const r = await c.command(`RCPT TO:<${to}>`);
      expect({ what, code: r.code }).toEqual({ what, code: 550 });
      expect(r.lines[0], what).toMatch(/^550 5\.1\.1 /);
    }
    // the real bounce: to the address alice's copy went out from
    expect((await c.command(`RCPT TO:<${aliceSender}>`)).code).toBe(250);
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(bounce);
    expect((await c.next()).code).toBe(250);
    expect((await c.command("QUIT")).code).toBe(221);

    await waitFor(
      "alice disabled",
      async () => (await rows(site)).get("alice@example.net")?.state === "disabled",
    );
    await waitFor("the two notices", () => site.sink.deliveryCount() >= 2);
    expect((await rows(site)).get("bob@example.com")).toMatchObject({ state: "enabled", score: 0 });
    expect(subjects(site, "alice@example.net")).toEqual(["Delivery from dev@example.org to you is disabled"]);
    // nothing forged was queued, so nothing was counted either
    const state = (await site.readState("dev@example.org")) as unknown as { forgedBounces?: number };
    expect(state.forgedBounces ?? 0).toBe(0);
    expect((await runCli(["stop", "-C", site.site.configFile])).code).toBe(0);
    await running.exited;
  }, 120_000);

  it("a forged VERP bounce that bypassed intake (or was queued before signing) is counted, never scored", async () => {
    s = await listSite([
      {
        address: "dev@example.org",
        owners: ["owner@example.org"],
        members: ["alice@example.net", "bob@example.com"],
        extra: "verp: true\nbounce: { threshold: 1 }",
      },
    ]);
    const k = key(s);
    const bobs = signedVerpAddress(DEV, "bob@example.com", k, Date.now());
    const tags = {
      unsigned: undefined,
      wrong: "aaaaaaaaaa",
      stale: signedVerpAddress(DEV, "alice@example.net", k, Date.now() - 30 * DAY)
        .split("+")[2]
        ?.split("@")[0],
      bobs: bobs.split("+")[2]?.split("@")[0],
    };
    const q = await Switchboard.open({ root: s.site.qfiles, queue: "bounce" });
    try {
      for (const tag of Object.values(tags))
        await q.enqueue(await fixture("bounces", "qmail.eml"), {
          sender: "",
          recipients: ["dev-bounces@example.org"],
          list: "dev@example.org",
          kind: "bounces",
          extra: { verpMember: "alice@example.net", ...(tag !== undefined ? { verpTag: tag } : {}) },
        });
    } finally {
      q.close();
    }
    await s.pump();
    expect((await rows(s)).get("alice@example.net")).toMatchObject({ state: "enabled", score: 0 });
    expect(
      ((await s.readState("dev@example.org")) as unknown as { forgedBounces: number }).forgedBounces,
    ).toBe(4);
    expect(
      s.logs
        .filter((l) => l.msg === "VERP bounce not scored")
        .map((l) => String(l["problem"]))
        .sort(),
    ).toEqual(["forged", "forged", "stale", "unsigned"]);
    expect(s.sink.messages).toEqual([]);
  });
});

describe("bounce probes (verp_probes)", () => {
  it("at the threshold the member gets a probe; only the probe's bounce disables; an unanswered probe resets", async () => {
    s = await listSite([
      {
        address: "dev@example.org",
        owners: ["owner@example.org"],
        members: ["alice@example.net", "carol@example.net"],
        extra: "verp_probes: true\nbounce: { threshold: 1, probe_expires: 5d }",
      },
    ]);
    // a DSN to the plain -bounces address for alice and carol: threshold reached, probes sent
    await s.inject(await fixture("bounces", "postfix-failed.eml"), "dev-bounces@example.org", "<>");
    await s.pump();
    let r = await rows(s);
    expect(r.get("alice@example.net")).toMatchObject({ state: "enabled", score: 1 });
    expect(r.get("carol@example.net")).toMatchObject({ state: "enabled", score: 1 });
    const probe = s.to("alice@example.net")[0];
    expect(headerValues(probe!.raw, "subject")[0]).toBe("dev@example.org: is your address still working?");
    expect(noticeText(probe!.raw)).toMatch(/checks whether your address works/);
    expect(probe!.from).toMatch(/^dev-bounces\+alice=example\.net\+p[a-z2-7]{10}@example\.org$/);
    expect(s.to("owner@example.org")).toEqual([]);
    s.sink.clear();

    // another bounce while the probe is out: no second probe, still enabled
    await s.inject(await fixture("bounces", "postfix-failed.eml"), "dev-bounces@example.org", "<>");
    await s.pump();
    expect(s.sink.messages).toEqual([]);

    // the probe bounces: alice is disabled, and told, and the owners
    await s.inject(await fixture("bounces", "qmail.eml"), probe!.from, "<>");
    await s.pump();
    r = await rows(s);
    expect(r.get("alice@example.net")).toMatchObject({ state: "disabled" });
    expect(r.get("carol@example.net")).toMatchObject({ state: "enabled" });
    expect(subjects(s, "alice@example.net")).toEqual(["Delivery from dev@example.org to you is disabled"]);
    expect(subjects(s, "owner@example.org")).toEqual([
      "dev@example.org: delivery to alice@example.net disabled after bounces",
    ]);

    // carol's probe never bounced: once it is older than probe_expires her score starts again
    const file = s.stateFile("dev@example.org");
    const st = JSON.parse(await readFile(file, "utf8")) as { probes: Record<string, { sent: number }> };
    expect(Object.keys(st.probes)).toEqual(["carol@example.net"]);
    st.probes["carol@example.net"] = { sent: Date.now() - 6 * DAY };
    await writeFile(file, JSON.stringify(st));
    await s.runOnce("bounce");
    expect((await rows(s)).get("carol@example.net")).toMatchObject({ state: "enabled", score: 0 });
    expect(s.logs.some((l) => l.msg === "bounce probe did not bounce; score reset")).toBe(true);
  });
});

describe("unrecognised bounces", () => {
  it("reach the owners: a few an hour whole, the rest in one digest after the hour; nothing kept", async () => {
    s = await listSite([{ address: "dev@example.org", owners: ["owner@example.org"], members: [] }]);
    const ordinary = await fixture("bounces", "ordinary.eml");
    for (let i = 0; i < 7; i++) await s.inject(ordinary, "dev-bounces@example.org");
    await s.pump();
    const forwards = s.to("owner@example.org");
    expect(forwards).toHaveLength(3);
    for (const f of forwards) {
      expect(f.from).toBe("");
      expect(headerValues(f.raw, "subject")[0]).toBe("dev@example.org: unrecognised bounce");
      expect(headerValues(f.raw, "content-type")[0]).toMatch(/^multipart\/mixed; boundary=/);
      // the bounce itself is attached
      expect(f.raw.toString("latin1")).toContain("Content-Type: message/rfc822");
      const firstLine = ordinary.toString("latin1").split(/\r?\n/)[0] ?? "";
      expect(firstLine.length).toBeGreaterThan(10);
      expect(f.raw.toString("latin1")).toContain(`\r\n\r\n${firstLine}\r\n`);
    }
    for (const q of ["bounce", "shunt"]) expect(await s.entries(q), q).toEqual([]);
    const file = s.stateFile("dev@example.org");
    const st = JSON.parse(await readFile(file, "utf8")) as {
      unrecognisedBounces: number;
      unrecognised: { digest: { since: number; count: number; items: unknown[] } };
    };
    expect(st.unrecognisedBounces).toBe(7);
    expect(st.unrecognised.digest).toMatchObject({ count: 4 });
    s.sink.clear();

    // the hour is over (moved back rather than waited for): the next run sends the digest
    st.unrecognised.digest.since -= 2 * 3_600_000;
    await writeFile(file, JSON.stringify(st));
    await s.runOnce("bounce");
    await s.pump();
    const digest = s.to("owner@example.org");
    expect(digest).toHaveLength(1);
    expect(headerValues(digest[0]!.raw, "subject")[0]).toMatch(
      /^dev@example\.org: 4 unrecognised bounce\(s\) since /,
    );
    expect(noticeText(digest[0]!.raw).match(/^- \d{4}-/gm)).toHaveLength(4);
    const after = JSON.parse(await readFile(file, "utf8")) as { unrecognised: { digest?: unknown } };
    expect(after.unrecognised.digest).toBeUndefined();
  });

  it("discard: nothing sent, nothing kept, counted", async () => {
    s = await listSite([
      {
        address: "dev@example.org",
        owners: ["owner@example.org"],
        members: [],
        extra: "unrecognized_bounces: discard",
      },
    ]);
    for (let i = 0; i < 5; i++)
      await s.inject(await fixture("bounces", "ordinary.eml"), "dev-bounces@example.org");
    await s.pump();
    expect(s.sink.messages).toEqual([]);
    for (const q of ["bounce", "shunt", "outgoing"]) expect(await s.entries(q), q).toEqual([]);
    const st = (await s.readState("dev@example.org")) as unknown as {
      unrecognisedBounces: number;
      unrecognised: { discarded: number; digest?: unknown };
    };
    expect(st.unrecognisedBounces).toBe(5);
    expect(st.unrecognised).toMatchObject({ discarded: 5 });
    expect(st.unrecognised.digest).toBeUndefined();
  });

  it("site: to the config's site_owner", async () => {
    s = await listSite(
      [
        {
          address: "dev@example.org",
          owners: ["owner@example.org"],
          members: [],
          extra: "unrecognized_bounces: site",
        },
      ],
      { config: "site_owner: postmaster@example.org\n" },
    );
    await s.inject(await fixture("bounces", "ordinary.eml"), "dev-bounces@example.org");
    await s.pump();
    expect(s.sink.messages.map((m) => m.to)).toEqual([["postmaster@example.org"]]);
  });
});

describe("delays", () => {
  it("a delay scores at most as a temporary bounce and never disables, even at temporary_weight 1", async () => {
    s = await listSite([
      {
        address: "dev@example.org",
        owners: ["owner@example.org"],
        members: ["erin@example.com"],
        extra: "bounce: { threshold: 1, temporary_weight: 1 }",
      },
    ]);
    await s.inject(await fixture("bounces", "postfix-delayed.eml"), "dev-bounces@example.org", "<>");
    await s.pump();
    expect((await rows(s)).get("erin@example.com")).toMatchObject({ state: "enabled", score: 0 });
    expect(s.logs.some((l) => l.msg === "a delay does not take a member to the threshold")).toBe(true);
    expect(s.sink.messages).toEqual([]);
  });
});
