/**
 * Moderation by mail end to end (issue 18): the held-post notice carries a token; a reply from an
 * owner or moderator, injected with the real `qrunner inject` to `dev-request+confirm-TOKEN@` (or to
 * -request with the Subject kept), acts on the post once through the real incoming, command and
 * outgoing runners, and a recording SMTP server on loopback shows what went out. Strangers, forged
 * From lines, reused and expired tokens change nothing. `Approved: PASSWORD` with the password set by
 * `qrunner list password` skips the hold, and the password never reaches the members or the archive.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { LmtpClient } from "../intake/lmtp-client.js";
import { requireBuild, runCli, waitFor } from "../helpers/site.js";
import type { SinkMessage } from "../helpers/smtp-sink.js";
import { headerValues, listSite, mail, noticeText, type ListSite } from "./lists-harness.js";

beforeAll(() => requireBuild());

const DEV = {
  address: "dev@example.org",
  owners: ["owner@example.org"],
  members: ["alice@example.net", "bob@example.com"],
};

/** The sites a test started (with their masters), closed after it whatever happened. */
const started: ListSite[] = [];
afterEach(async () => {
  for (const site of started.splice(0)) await site.close();
});

/** A site with the list dev@ (owner@, members alice@ and bob@) and these extra list keys. */
async function devSite(extra: string, config?: string): Promise<ListSite> {
  const site = await listSite([{ ...DEV, extra }], config !== undefined ? { config } : {});
  started.push(site);
  return site;
}

/** A nonmember's post, held; the token of its notice to the owner. */
async function holdOne(site: ListSite, subject: string): Promise<string> {
  await site.inject(
    mail({ from: "mallory@example.com", to: "dev@example.org", subject, id: `<${subject}@x>` }),
    "dev@example.org",
  );
  await site.pump();
  const { token } = noticeFor(site, "owner@example.org", subject);
  site.sink.clear();
  return token;
}

async function heldPosts(site: ListSite): Promise<{ id: string; subject?: string }[]> {
  const r = await site.cli(["held", "dev@example.org", "--json"]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { id: string; subject?: string }[];
}

/** The held-post notice `to` got for the post with this subject: its token, from Subject and Reply-To. */
function noticeFor(site: ListSite, to: string, subject: string): { token: string; notice: SinkMessage } {
  const notices = site.to(to).filter((m) => noticeText(m.raw).includes(`subject: ${subject}\r\n`));
  expect(notices, `held notices to ${to} about "${subject}"`).toHaveLength(1);
  const notice = notices[0]!;
  const token = /^confirm ([0-9a-f]{40})$/.exec(headerValues(notice.raw, "subject")[0] ?? "")?.[1] ?? "";
  expect(token).not.toBe("");
  expect(headerValues(notice.raw, "reply-to")).toEqual([`dev-request+confirm-${token}@example.org`]);
  return { token, notice };
}

/** A reply as a mail client writes it: the answer on top, the notice quoted below. */
function reply(
  from: string,
  token: string,
  body: string,
  to = `dev-request+confirm-${token}@example.org`,
): Buffer {
  return mail({
    from,
    to,
    subject: `Re: confirm ${token}`,
    body: `${body}\r\n\r\nOn Mon, 7 Dec 2026, dev-owner@example.org wrote:\r\n> A post to dev@example.org is held for your approval.\r\n>   approve  distribute the post`,
  });
}

/** What the members (not the owners and moderators) received: "<message-id> member" → copies. */
function memberDeliveries(site: ListSite): Map<string, number> {
  return new Map([...site.sink.deliveries()].filter(([k]) => DEV.members.some((m) => k.endsWith(` ${m}`))));
}

/** The one results reply `to` got since the last clear. */
function resultFor(site: ListSite, to: string): string {
  const replies = site
    .to(to)
    .filter((m) => /^Results of your commands/.test(headerValues(m.raw, "subject")[0] ?? ""));
  expect(replies, `results replies to ${to}`).toHaveLength(1);
  return noticeText(replies[0]!.raw);
}

describe("moderation by mail", () => {
  it("a moderator's reply approves or rejects once; strangers, forged From lines and reused tokens change nothing", async () => {
    const s = await devSite("nonmembers: hold\nmoderators: [mod@example.org]");
    for (const [from, subject] of [
      ["Mallory <mallory@example.com>", "one"],
      ["oscar@example.com", "two"],
      ["peggy@example.com", "three"],
    ] as const)
      await s.inject(mail({ from, to: "dev@example.org", subject, id: `<${subject}@x>` }), "dev@example.org");
    await s.pump();
    // owners and moderators get the notices, each with its own token; nobody else gets anything
    for (const who of ["owner@example.org", "mod@example.org"]) expect(s.to(who)).toHaveLength(3);
    expect(s.sink.messages.map((m) => [...m.to].sort())).toEqual(
      Array(3).fill(["mod@example.org", "owner@example.org"]),
    );
    const one = noticeFor(s, "mod@example.org", "one").token;
    const two = noticeFor(s, "owner@example.org", "two").token;
    const three = noticeFor(s, "owner@example.org", "three").token;
    expect(noticeFor(s, "owner@example.org", "one").token).toBe(one);
    expect(new Set([one, two, three]).size).toBe(3);
    s.sink.clear();

    // a stranger who has the token: nothing happens, no answer, the post stays held
    await s.inject(reply("mallory@example.com", one, "approve"), `dev-request+confirm-${one}@example.org`);
    // a forged From: a moderator's address over a stranger's envelope sender: the same
    await s.inject(
      reply("mod@example.org", one, "approve"),
      `dev-request+confirm-${one}@example.org`,
      "mallory@example.com",
    );
    await s.pump();
    expect(s.sink.messages).toEqual([]);
    expect((await heldPosts(s)).map((h) => h.subject).sort()).toEqual(["one", "three", "two"]);
    expect(s.logs.filter((l) => /not an owner or moderator: ignored/.test(String(l.msg)))).toHaveLength(2);

    // the moderator replies "approve": the token still works, the post reaches the members
    await s.inject(reply("mod@example.org", one, "approve"), `dev-request+confirm-${one}@example.org`);
    await s.pump();
    expect(memberDeliveries(s)).toEqual(
      new Map([
        ["<one@x> alice@example.net", 1],
        ["<one@x> bob@example.com", 1],
      ]),
    );
    expect(resultFor(s, "mod@example.org")).toMatch(
      /> approve\r\nApproved: the post from mallory@example.com \("one"\) goes to the list\./,
    );
    // and nothing else: the two members and the moderator's answer
    expect(s.sink.messages.flatMap((m) => m.to).sort()).toEqual([
      "alice@example.net",
      "bob@example.com",
      "mod@example.org",
    ]);
    s.sink.clear();

    // the same token again: nothing changes, and the reply says so
    await s.inject(reply("mod@example.org", one, "discard"), `dev-request+confirm-${one}@example.org`);
    await s.pump();
    expect(s.sink.messages.map((m) => m.to)).toEqual([["mod@example.org"]]);
    expect(resultFor(s, "mod@example.org")).toMatch(
      /unknown \(mistyped, or already used\); nothing was changed/,
    );
    s.sink.clear();

    // reject with a reason: the poster is told the reason, the members get nothing
    await s.inject(
      reply("owner@example.org", two, "reject off topic for this list"),
      `dev-request+confirm-${two}@example.org`,
    );
    await s.pump();
    expect(s.sink.messages.map((m) => m.to).sort()).toEqual([["oscar@example.com"], ["owner@example.org"]]);
    const rejection = s.to("oscar@example.com")[0]!;
    expect(headerValues(rejection.raw, "in-reply-to")).toEqual(["<two@x>"]);
    expect(noticeText(rejection.raw)).toContain("Reason: off topic for this list");
    expect(resultFor(s, "owner@example.org")).toMatch(
      /Rejected: the post from oscar@example.com \("two"\); the poster was told\./,
    );
    s.sink.clear();

    // an empty reply keeping the Subject, sent to plain -request: approves
    await s.inject(
      mail({
        from: "Owner <owner@example.org>",
        to: "dev-request@example.org",
        subject: `Re: confirm ${three}`,
        body: "> A post to dev@example.org is held for your approval.",
      }),
      "dev-request@example.org",
    );
    await s.pump();
    expect([...memberDeliveries(s).keys()].filter((k) => k.startsWith("<three@x>")).sort()).toEqual([
      "<three@x> alice@example.net",
      "<three@x> bob@example.com",
    ]);
    expect(resultFor(s, "owner@example.org")).toMatch(
      /> \(an empty reply\)\r\nApproved: the post from peggy@example.com/,
    );
    expect(await heldPosts(s)).toEqual([]);
  });

  it("an expired token changes nothing and says so; the post stays held for the CLI", async () => {
    const s = await devSite("nonmembers: hold\nconfirm_expires: 1s");
    const token = await holdOne(s, "late");
    await sleep(1500);
    await s.inject(reply("owner@example.org", token, "approve"), `dev-request+confirm-${token}@example.org`);
    await s.pump();
    expect(s.sink.messages.map((m) => m.to)).toEqual([["owner@example.org"]]);
    expect(resultFor(s, "owner@example.org")).toMatch(/This token has expired; nothing was changed/);
    const held = await heldPosts(s);
    expect(held.map((h) => h.subject)).toEqual(["late"]);
    expect((await s.cli(["approve", held[0]!.id])).code).toBe(0);
  });

  it("a reply that says nothing known changes nothing, keeps the token, and is told the words", async () => {
    const s = await devSite("nonmembers: hold");
    const token = await holdOne(s, "q");
    await s.inject(
      reply("owner@example.org", token, "yes please"),
      `dev-request+confirm-${token}@example.org`,
    );
    await s.pump();
    expect(resultFor(s, "owner@example.org")).toMatch(/> yes please\r\nNot understood; nothing was changed/);
    expect(await heldPosts(s)).toHaveLength(1);
    s.sink.clear();
    await s.inject(reply("owner@example.org", token, "discard"), `dev-request+confirm-${token}@example.org`);
    await s.pump();
    expect(resultFor(s, "owner@example.org")).toMatch(/Discarded: the post from mallory@example.com/);
    expect(await heldPosts(s)).toEqual([]);
    expect(s.sink.messages.map((m) => m.to)).toEqual([["owner@example.org"]]);
  });
});

describe("moderation by mail through the running daemon", () => {
  it("the master's runners hold a post, and a moderator's reply over LMTP releases it to the members", async () => {
    const s = await devSite(
      "nonmembers: hold\nmoderators: [mod@example.org]",
      "intake: { lmtp: 127.0.0.1:0 }\n",
    );
    const { lmtpPort } = await s.startMaster();
    expect(lmtpPort).toBeGreaterThan(0);

    await s.inject(
      mail({ from: "mallory@example.com", to: "dev@example.org", subject: "live", id: "<live@x>" }),
      "dev@example.org",
    );
    await waitFor("the held-post notice", () => s.to("mod@example.org").length > 0);
    const { token } = noticeFor(s, "mod@example.org", "live");
    expect(memberDeliveries(s).size).toBe(0);

    const { client } = await LmtpClient.connect(lmtpPort!);
    try {
      expect((await client.command("LHLO moderator.example.org")).code).toBe(250);
      expect((await client.command("MAIL FROM:<mod@example.org>")).code).toBe(250);
      expect((await client.command(`RCPT TO:<dev-request+confirm-${token}@example.org>`)).code).toBe(250);
      expect((await client.command("DATA")).code).toBe(354);
      client.sendData(reply("Moderator <mod@example.org>", token, "approve"));
      expect((await client.next()).code).toBe(250);
    } finally {
      client.close();
    }
    await waitFor("the post at both members", () => memberDeliveries(s).size === 2);
    expect(memberDeliveries(s)).toEqual(
      new Map([
        ["<live@x> alice@example.net", 1],
        ["<live@x> bob@example.com", 1],
      ]),
    );
    await waitFor("the moderator's answer", () =>
      s.to("mod@example.org").some((m) => /^Results/.test(headerValues(m.raw, "subject")[0] ?? "")),
    );
    expect(resultFor(s, "mod@example.org")).toMatch(/Approved: the post from mallory@example.com \("live"\)/);
    expect(await heldPosts(s)).toEqual([]);
  });
});

describe("Approved: PASSWORD", () => {
  it("the list's moderator password skips the hold and is removed; a wrong one is held, the poster not told", async () => {
    const s = await devSite("nonmembers: hold");
    const set = await runCli(["list", "password", "dev@example.org", "-C", s.site.configFile], {
      input: "open sesame\n",
    });
    expect(set.code, set.stderr).toBe(0);
    const listFile = await readFile(path.join(s.site.listsDir, "dev@example.org.yaml"), "utf8");
    expect(listFile).toMatch(/^moderator_password: scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/m);
    expect(listFile).not.toContain("open sesame");

    await s.inject(
      mail({
        from: "mod@example.org",
        to: "dev@example.org",
        subject: "by header",
        id: "<hdr@x>",
        headers: ["Approved: open sesame"],
      }),
      "dev@example.org",
    );
    await s.inject(
      mail({
        from: "mod@example.org",
        to: "dev@example.org",
        subject: "by body",
        id: "<body@x>",
        body: "Approve: open sesame\r\nThe news.",
      }),
      "dev@example.org",
    );
    await s.inject(
      mail({
        from: "eve@example.com",
        to: "dev@example.org",
        subject: "guess",
        id: "<guess@x>",
        headers: ["Approved: sesame"],
      }),
      "dev@example.org",
    );
    await s.pump();

    expect(memberDeliveries(s)).toEqual(
      new Map([
        ["<hdr@x> alice@example.net", 1],
        ["<hdr@x> bob@example.com", 1],
        ["<body@x> alice@example.net", 1],
        ["<body@x> bob@example.com", 1],
      ]),
    );
    for (const m of s.sink.messages.filter((m) => m.to.includes("alice@example.net"))) {
      expect(headerValues(m.raw, "approved")).toEqual([]);
      expect(m.raw.toString()).not.toContain("sesame");
    }
    const byBody = s.sink.messages.find((m) => headerValues(m.raw, "message-id")[0] === "<body@x>")!;
    expect(byBody.raw.toString()).toMatch(/\r\n\r\nThe news\.\r\n$/);

    // the wrong password: held, the owner told, the poster not; the held copy has no Approved: either
    const held = await heldPosts(s);
    expect(held.map((h) => h.subject)).toEqual(["guess"]);
    expect(s.to("eve@example.com")).toEqual([]);
    expect(s.to("owner@example.org")).toHaveLength(1);
    const heldDir = path.join(s.site.state, "lists", "dev@example.org", "held");
    const heldFile = await readFile(path.join(heldDir, `${held[0]!.id}.held`), "utf8");
    expect(heldFile).not.toContain("Approved:");

    // the archive has the approved posts, without the password
    const archive = await archiveText(s.site.state);
    expect(archive).toContain("Message-ID: <hdr@x>");
    expect(archive).toContain("Message-ID: <body@x>");
    expect(archive).not.toContain("sesame");
  });
});

/** Every .mbox file under the state directory, concatenated. */
async function archiveText(dir: string): Promise<string> {
  let out = "";
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile() && e.name.endsWith(".mbox"))
      out += await readFile(path.join(e.parentPath, e.name), "utf8");
  return out;
}
