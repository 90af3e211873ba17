/**
 * Bounce processing end to end (issue 6): VERP and DSN bounces injected to -bounces, 5xx answers of
 * the SMTP server turned into bounce events by outgoing, scoring at most once a UTC day, disabling at
 * the threshold with one notice to the member and one to the owners, stale scores starting again,
 * re-enabling by a confirmed join, and the idle-only bounce runner that waits and then catches up.
 * Earlier days' bounces are pre-seeded in the list's state file (the scorer counts once per day).
 */
import { readFile, writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { emptyState, type ListState, type MemberState } from "../../src/lists/state-shape.js";
import { signedVerpAddress, VerpKeys } from "../../src/lists/verp.js";
import { logLines, runCli, waitFor } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";
import { fixture, headerValues, listSite, mail, noticeText, type ListSite } from "./lists-harness.js";

const t = testScope();

const DAY = 86_400_000;

/** A list site with dev@example.org (owner@example.org its owner): these members, these extra lines. */
const devSite = (members: string[], extra: string): Promise<ListSite> =>
  listSite([{ address: "dev@example.org", owners: ["owner@example.org"], members, extra }]);

/** The signed VERP address of `member` on dev@example.org, with the site's own secret. */
function verp(site: ListSite, member: string): string {
  const dev = { name: "dev", domain: "example.org", address: "dev@example.org" };
  return signedVerpAddress(dev, member, new VerpKeys().get(site.site.state), Date.now());
}
const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

interface MemberRow {
  address: string;
  state: "enabled" | "disabled";
  disabled?: { reason: string };
  score: number;
}

async function memberRows(site: ListSite, list = "dev@example.org"): Promise<Map<string, MemberRow>> {
  const r = await site.cli(["members", list, "--json"]);
  expect(r.code, r.stderr).toBe(0);
  return new Map((JSON.parse(r.stdout) as { members: MemberRow[] }).members.map((m) => [m.address, m]));
}

function state(members: ListState["members"]): ListState {
  return { ...emptyState(), members };
}

/** A bounce earlier days counted: `score`, last counted `daysAgo` days ago. */
function seeded(score: number, daysAgo: number): MemberState {
  const at = Date.now() - daysAgo * DAY;
  return { score, lastBounce: at, lastCounted: utcDay(at) };
}

/** A member row disabled by bounces with this score. */
const disabledAt = (score: number) => ({ state: "disabled", disabled: { reason: "bounces" }, score });

function subjects(site: ListSite, to: string): string[] {
  return site.to(to).map((m) => headerValues(m.raw, "subject")[0] ?? "");
}

async function post(site: ListSite, id: string): Promise<void> {
  await site.inject(
    mail({ from: "alice@example.net", to: "dev@example.org", subject: "news", id }),
    "dev@example.org",
    "alice@example.net",
  );
  await site.pump();
}

const DISABLED_MEMBER = "Delivery from dev@example.org to you is disabled";
const disabledOwner = (m: string): string => `dev@example.org: delivery to ${m} disabled after bounces`;

describe("bounces disable a member at the threshold", () => {
  it("VERP: the bounce address names the member; disabled at threshold 1, notices sent, no more posts; a confirmed join re-enables", async () => {
    const s = t.own(
      await devSite(
        ["alice@example.net", "bob@example.com", "carol@example.net"],
        "verp: true\nbounce: { threshold: 1 }",
      ),
    );
    await post(s, "<p1@x>");
    // one transaction per member, each from the member's signed VERP address
    expect(s.sink.messages.map((m) => `${m.to.join()} ${m.from}`).sort()).toEqual([
      `alice@example.net ${verp(s, "alice@example.net")}`,
      `bob@example.com ${verp(s, "bob@example.com")}`,
      `carol@example.net ${verp(s, "carol@example.net")}`,
    ]);
    s.sink.clear();

    // a bounce in a format that names other addresses: VERP decides who bounced
    await s.inject(await fixture("bounces", "qmail.eml"), verp(s, "bob@example.com"), "<>");
    // not bounces, though they reach carol's VERP address: a delay, a success report, a vacation reply
    await s.inject(await fixture("bounces", "postfix-delayed.eml"), verp(s, "carol@example.net"), "<>");
    await s.inject(await fixture("bounces", "success-dsn.eml"), verp(s, "carol@example.net"), "<>");
    await s.inject(await fixture("bounces", "vacation-autoreply.eml"), verp(s, "carol@example.net"));
    await s.inject(await fixture("bounces", "ooo-autoreply.eml"), verp(s, "carol@example.net"));
    // a VERP address of someone who is no member
    await s.inject(await fixture("bounces", "qmail.eml"), verp(s, "zed@example.com"), "<>");
    await s.pump();

    const rows = await memberRows(s);
    expect(rows.get("bob@example.com")).toMatchObject(disabledAt(1));
    expect(rows.get("carol@example.net")).toMatchObject({ state: "enabled", score: 0 });
    expect(rows.get("alice@example.net")).toMatchObject({ state: "enabled", score: 0 });
    // one notice to the member, one to the owners, nothing to anyone else
    expect(subjects(s, "bob@example.com")).toEqual([DISABLED_MEMBER]);
    expect(noticeText(s.to("bob@example.com")[0]!.raw)).toMatch(/send "join" to dev-request@example.org/);
    expect(subjects(s, "owner@example.org")).toEqual([disabledOwner("bob@example.com")]);
    expect(s.sink.messages).toHaveLength(2);
    expect(await s.entries("shunt")).toEqual([]);
    expect(s.logs.filter((l) => l.msg === "not a bounce; dropped")).toHaveLength(3);
    s.sink.clear();

    await post(s, "<p2@x>");
    expect([...s.sink.deliveries().keys()].sort()).toEqual([
      "<p2@x> alice@example.net",
      "<p2@x> carol@example.net",
    ]);
    s.sink.clear();

    // bob asks for list mail again and confirms
    await s.inject(
      mail({ from: "bob@example.com", to: "dev-request@example.org", subject: "join" }),
      "dev-request@example.org",
    );
    await s.pump();
    const token =
      subjects(s, "bob@example.com")
        .find((x) => x.startsWith("confirm "))
        ?.slice("confirm ".length) ?? "";
    s.sink.clear();
    await s.inject(
      mail({ from: "bob@example.com", to: "dev-request@example.org", subject: `Re: confirm ${token}` }),
      "dev-request@example.org",
    );
    await s.pump();
    expect(noticeText(s.to("bob@example.com")[0]!.raw)).toMatch(
      /Delivery of dev@example.org to bob@example.com is enabled again/,
    );
    expect((await memberRows(s)).get("bob@example.com")).toMatchObject({ state: "enabled", score: 0 });
    s.sink.clear();
    await post(s, "<p3@x>");
    expect(s.sink.deliveries().get("<p3@x> bob@example.com")).toBe(1);
  });

  it("DSN: counted once per UTC day; disabled when earlier days' bounces reach the threshold; unrecognised bounces forwarded", async () => {
    const s = t.own(
      await listSite([
        {
          address: "dev@example.org",
          owners: ["owner@example.org", "owner2@example.org"],
          members: ["alice@example.net", "carol@example.net", "Dave.Smith@example.net", "erin@example.com"],
          extra: "bounce: { threshold: 3, stale_after: 7d }",
        },
      ]),
    );
    // alice bounced on two earlier days, carol on one
    await s.writeState(
      "dev@example.org",
      state({ "alice@example.net": seeded(2, 2), "carol@example.net": seeded(1, 3) }),
    );
    // postfix-failed.eml: a DSN for alice, carol (through Original-Recipient) and Dave.Smith
    const dsn = await fixture("bounces", "postfix-failed.eml");
    await s.inject(dsn, "dev-bounces@example.org", "<>");
    // erin's is only a delay; a vacation reply is no bounce; ordinary.eml is a person's mail nobody can read as one
    await s.inject(await fixture("bounces", "postfix-delayed.eml"), "dev-bounces@example.org", "<>");
    await s.inject(await fixture("bounces", "vacation-autoreply.eml"), "dev-bounces@example.org");
    await s.inject(await fixture("bounces", "ordinary.eml"), "dev-bounces@example.org");
    await s.pump();

    let rows = await memberRows(s);
    expect(rows.get("alice@example.net")).toMatchObject(disabledAt(3));
    expect(rows.get("carol@example.net")).toMatchObject({ state: "enabled", score: 2 });
    // a full mailbox is a soft bounce: half a hard one
    expect(rows.get("Dave.Smith@example.net")).toMatchObject({ state: "enabled", score: 0.5 });
    expect(rows.get("erin@example.com")).toMatchObject({ state: "enabled", score: 0 });
    expect(subjects(s, "alice@example.net")).toEqual([DISABLED_MEMBER]);
    for (const o of ["owner@example.org", "owner2@example.org"])
      expect(subjects(s, o).sort()).toEqual(
        [disabledOwner("alice@example.net"), "dev@example.org: unrecognised bounce"].sort(),
      );
    expect(s.sink.messages).toHaveLength(3);
    // the unrecognised bounce is forwarded to the owners from the null sender, counted, and not kept
    const forward = s.sink.messages.find((m) =>
      /unrecognised bounce/.test(headerValues(m.raw, "subject")[0] ?? ""),
    );
    expect(forward?.from).toBe("");
    expect(await s.entries("shunt")).toEqual([]);
    expect((await s.readState("dev@example.org")).unrecognisedBounces).toBe(1);
    expect(s.logs.filter((l) => l.msg === "not a bounce; dropped").map((l) => String(l["reason"]))).toEqual([
      "an automatic reply (Auto-Submitted: auto-replied), not a delivery failure",
    ]);
    s.sink.clear();

    // the same DSN again today: already counted today, nothing changes, nobody is told again
    await s.inject(dsn, "dev-bounces@example.org", "<>");
    await s.pump();
    rows = await memberRows(s);
    expect([...rows.values()].map((r) => `${r.address} ${r.score} ${r.state}`).sort()).toEqual([
      "Dave.Smith@example.net 0.5 enabled",
      "alice@example.net 3 disabled",
      "carol@example.net 2 enabled",
      "erin@example.com 0 enabled",
    ]);
    expect(s.sink.messages).toEqual([]);

    await post(s, "<after-dsn@x>");
    expect([...s.sink.deliveries().keys()].sort()).toEqual([
      "<after-dsn@x> Dave.Smith@example.net",
      "<after-dsn@x> carol@example.net",
      "<after-dsn@x> erin@example.com",
    ]);
  });

  it("a stale score starts again; a recent one goes on to the threshold; a delay adds nothing", async () => {
    const s = t.own(
      await devSite(
        ["olivia@example.com", "peggy@example.com", "rupert@example.net"],
        "bounce: { threshold: 3, stale_after: 7d }",
      ),
    );
    // peggy's last bounce is 30 days old (stale), olivia's 2 days, rupert's 2 days
    await s.writeState(
      "dev@example.org",
      state({
        "olivia@example.com": seeded(2, 2),
        "peggy@example.com": seeded(2, 30),
        "rupert@example.net": seeded(2, 2),
      }),
    );
    // sendmail-mixed.eml: olivia failed (user unknown: hard), peggy was refused (relaying denied:
    // soft, half a hard bounce), rupert delayed
    await s.inject(await fixture("bounces", "sendmail-mixed.eml"), "dev-bounces@example.org", "<>");
    await s.pump();
    const rows = await memberRows(s);
    expect(rows.get("olivia@example.com")).toMatchObject({ state: "disabled", score: 3 });
    expect(rows.get("peggy@example.com")).toMatchObject({ state: "enabled", score: 0.5 });
    expect(rows.get("rupert@example.net")).toMatchObject({ state: "enabled", score: 2 });
    const st = await s.readState("dev@example.org");
    expect(st.members["peggy@example.com"]?.lastCounted).toBe(utcDay(Date.now()));
    expect(subjects(s, "olivia@example.com")).toEqual([DISABLED_MEMBER]);
    expect(subjects(s, "owner@example.org")).toEqual([disabledOwner("olivia@example.com")]);
    expect(s.to("peggy@example.com")).toEqual([]);
  });

  it("a 5xx answer at delivery is a bounce event scored the same way", async () => {
    const s = t.own(await devSite(["alice@example.net", "carol@example.net"], "bounce: { threshold: 1 }"));
    s.sink.setFaults({ rcpt: (a) => (a === "carol@example.net" ? 550 : undefined) });
    await post(s, "<five@x>");
    expect(s.sink.deliveries().get("<five@x> alice@example.net")).toBe(1);
    const rows = await memberRows(s);
    expect(rows.get("carol@example.net")).toMatchObject(disabledAt(1));
    expect(rows.get("alice@example.net")).toMatchObject({ state: "enabled", score: 0 });
    // the owners are told once; the notice to carol was refused by the same 550 (scored, not counted again)
    expect(subjects(s, "owner@example.org")).toEqual([disabledOwner("carol@example.net")]);
    const scored = s.logs.filter((l) => l.msg === "bounce scored" && l["member"] === "carol@example.net");
    expect(scored.map((l) => l["counted"])).toEqual([true, false]);
    s.sink.clear();
    s.sink.clearFaults();

    await post(s, "<five-2@x>");
    expect([...s.sink.deliveries().keys()]).toEqual(["<five-2@x> alice@example.net"]);
  });
});

describe("idle-only bounce runs", () => {
  it("with the machine busy (max_loadavg 0) bounces wait under the master; after an edit to a high max_loadavg it catches up, losing nothing", async () => {
    // m1..m4 each get a VERP bounce below; alice and carol are in postfix-failed.eml
    const members = [
      ...Array.from({ length: 4 }, (_, i) => `m${i + 1}@example.com`),
      "alice@example.net",
      "carol@example.net",
    ];
    // (Dave.Smith, whose mailbox is full in postfix-failed.eml, is left out: a soft bounce scores 0.5)
    const s = t.own(
      await listSite(
        [
          {
            address: "dev@example.org",
            owners: ["owner@example.org"],
            members,
            extra: "verp: true\nbounce: { threshold: 1 }",
          },
        ],
        { runners: "  bounce: { idle_only: true, max_loadavg: 0, sleep: 200ms }\n" },
      ),
    );
    const master = t.spawn(["start", "-C", s.site.configFile]);
    await waitFor("all workers ready", () =>
      logLines(master.stdout()).some((l) => l["msg"] === "all workers ready"),
    );
    for (const m of members.slice(0, 4))
      await s.inject(await fixture("bounces", "qmail.eml"), verp(s, m), "<>");
    await s.inject(await fixture("bounces", "postfix-failed.eml"), "dev-bounces@example.org", "<>");

    // routed to the bounce queue, and there they stay while the runner waits
    await waitFor(
      "five bounce entries",
      async () => (await s.entries("incoming")).length === 0 && (await s.entries("bounce")).length === 5,
    );
    await waitFor("the bounce runner to say it waits", () =>
      logLines(master.stdout()).some(
        (l) => l["runner"] === "bounce" && l["msg"] === "waiting" && /load average/.test(String(l["reason"])),
      ),
    );
    // status shows why the bounce worker does not work
    await waitFor("status to show the bounce worker waiting", async () => {
      const st = await runCli(["status", "--json", "-C", s.site.configFile]);
      const w = (
        JSON.parse(st.stdout) as { workers: { runner: string; waiting: string | null }[] }
      ).workers.find((x) => x.runner === "bounce");
      return /^waiting for idle: load average/.test(w?.waiting ?? "");
    });
    expect(await s.entries("bounce")).toHaveLength(5);
    expect([...(await memberRows(s)).values()].every((r) => r.state === "enabled")).toBe(true);
    expect(s.sink.messages).toEqual([]);

    // a config edit makes the machine count as idle: the runner catches up
    const cfg = await readFile(s.site.configFile, "utf8");
    await writeFile(s.site.configFile, cfg.replace("max_loadavg: 0,", "max_loadavg: 1000,"));
    await waitFor(
      "every member disabled",
      async () => [...(await memberRows(s)).values()].every((r) => r.state === "disabled"),
      30_000,
    );
    await waitFor("every notice delivered", () => s.sink.deliveryCount() >= members.length * 2, 30_000);
    const stop = await runCli(["stop", "-C", s.site.configFile]);
    expect(stop.code, stop.stderr).toBe(0);
    await master.exited;

    for (const m of members) {
      expect(subjects(s, m), m).toEqual([DISABLED_MEMBER]);
    }
    expect(subjects(s, "owner@example.org").sort()).toEqual(members.map(disabledOwner).sort());
    for (const q of ["incoming", "bounce", "outgoing", "shunt"]) expect(await s.entries(q), q).toEqual([]);
  });

  it("waits while the outgoing queue is not empty, then works once it is", async () => {
    const s = t.own(
      await listSite(
        [
          {
            address: "dev@example.org",
            owners: ["owner@example.org"],
            members: ["alice@example.net", "bob@example.com"],
            extra: "verp: true\nbounce: { threshold: 1 }",
          },
        ],
        { runners: "  bounce: { idle_only: true, max_loadavg: 1000 }\n" },
      ),
    );
    await s.inject(
      mail({ from: "alice@example.net", to: "dev@example.org", subject: "post", id: "<busy@x>" }),
      "dev@example.org",
    );
    await s.inject(await fixture("bounces", "qmail.eml"), verp(s, "bob@example.com"), "<>");
    await s.runOnce("incoming");
    // with VERP, one transaction per member
    expect(await s.entries("outgoing")).toHaveLength(2);

    const waited = await s.runOnce("bounce");
    expect(
      waited.some((l) => l.msg === "waiting" && /the outgoing queue is not empty/.test(String(l["reason"]))),
    ).toBe(true);
    expect(await s.entries("bounce")).toHaveLength(1);

    await s.runOnce("outgoing");
    const worked = await s.runOnce("bounce");
    // it works at once (and waits again only after, for the notices it queued in outgoing)
    const scored = worked.findIndex((l) => l.msg === "member disabled after bounces");
    const waited2 = worked.findIndex((l) => l.msg === "waiting");
    expect(scored).toBeGreaterThan(-1);
    expect(waited2 === -1 || waited2 > scored).toBe(true);
    expect(await s.entries("bounce")).toEqual([]);
    await s.pump();
    // the post went out before the bounce was scored; then the notice
    expect(subjects(s, "bob@example.com")).toEqual(["post", DISABLED_MEMBER]);
  });
});
