/**
 * Commands by mail end to end (issue 6): join and leave with a confirmation token, through
 * `qrunner inject` to -request, -join and -leave, the real command, incoming and outgoing runners, and
 * a recording SMTP server on loopback. Wrong and expired tokens change nothing and say why; robots get
 * no reply, and no address gets more than max_replies_per_hour messages.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { headerValues, listSite, mail, noticeText, type ListSite } from "./lists-harness.js";
import type { SinkMessage } from "../helpers/smtp-sink.js";
import { testScope } from "../helpers/scope.js";

const t = testScope();

function dev(
  extra = "",
  nonmembers = "discard",
): { address: string; owners: string[]; members: string[]; extra: string } {
  return {
    address: "dev@example.org",
    owners: ["owner@example.org"],
    members: ["alice@example.net", "bob@example.com", "carol@example.net"],
    extra: `subject_prefix: "[dev] "\nnonmembers: ${nonmembers}\n${extra}`,
  };
}

interface MemberJson {
  members: { address: string; state: string; source: string }[];
}

async function members(site: ListSite): Promise<string[]> {
  const r = await site.cli(["members", "dev@example.org", "--json"]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as MemberJson).members.map((m) => m.address).sort();
}

/** The one confirmation request `to` got since the last clear; its token. */
function tokenFor(site: ListSite, to: string): { token: string; message: SinkMessage } {
  const confirms = site.to(to).filter((m) => /^confirm /.test(headerValues(m.raw, "subject")[0] ?? ""));
  expect(confirms, `confirmation requests to ${to}`).toHaveLength(1);
  const token = /^confirm (\S+)$/.exec(headerValues(confirms[0]!.raw, "subject")[0] ?? "")?.[1] ?? "";
  expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
  return { token, message: confirms[0]! };
}

/** The results reply `to` got since the last clear. */
function replyTo(site: ListSite, to: string): string {
  const replies = site
    .to(to)
    .filter((m) => /^Results of your commands/.test(headerValues(m.raw, "subject")[0] ?? ""));
  expect(replies, `replies to ${to}`).toHaveLength(1);
  return noticeText(replies[0]!.raw);
}

/** Mail to dev-request@example.org, injected. */
function toRequest(
  site: ListSite,
  fields: { from: string; subject: string; body?: string; id?: string; headers?: string[] },
): Promise<string> {
  return site.inject(mail({ ...fields, to: "dev-request@example.org" }), "dev-request@example.org");
}

async function post(site: ListSite, id: string): Promise<void> {
  await site.inject(
    mail({ from: "alice@example.net", to: "dev@example.org", subject: "news", id }),
    "dev@example.org",
  );
  await site.pump();
}

describe("join and leave by mail", () => {
  it("subscribe to -request or mail to -join, confirm with the token, receive the next post", async () => {
    const s = t.own(await listSite([dev()]));
    // "subscribe" in the Subject to -request
    await toRequest(s, { from: "Newbie <newbie@example.com>", subject: "subscribe", id: "<sub-1@x>" });
    // a plain message to -join
    await s.inject(
      mail({
        from: "joiner@example.net",
        to: "dev-join@example.org",
        subject: "hi",
        id: "<join-1@x>",
        body: "please add me",
      }),
      "dev-join@example.org",
    );
    await s.pump();

    const n = tokenFor(s, "newbie@example.com");
    expect(n.message.from).toBe("dev-bounces@example.org");
    expect(headerValues(n.message.raw, "from")).toEqual(["dev-request@example.org"]);
    expect(headerValues(n.message.raw, "in-reply-to")).toEqual(["<sub-1@x>"]);
    expect(noticeText(n.message.raw)).toContain(`confirm ${n.token}`);
    expect(replyTo(s, "newbie@example.com")).toMatch(/A confirmation request was sent to newbie@example.com/);
    const j = tokenFor(s, "joiner@example.net");
    // not members until confirmed
    expect(await members(s)).not.toContain("newbie@example.com");
    expect(await members(s)).not.toContain("joiner@example.net");
    s.sink.clear();

    // newbie replies to the confirmation (Re: keeps the token in the Subject); joiner writes the line
    await s.inject(
      mail({
        from: "newbie@example.com",
        to: "dev-request@example.org",
        subject: `Re: confirm ${n.token}`,
        body: `> To confirm, reply\n> confirm ${n.token}`,
      }),
      "dev-request@example.org",
    );
    await s.inject(
      mail({
        from: "joiner@example.net",
        to: "dev-request@example.org",
        subject: "ok",
        body: `confirm ${j.token}\n-- \njoiner`,
      }),
      "dev-request@example.org",
    );
    await s.pump();
    expect(replyTo(s, "newbie@example.com")).toMatch(/newbie@example.com is now a member of dev@example.org/);
    expect(replyTo(s, "joiner@example.net")).toMatch(/joiner@example.net is now a member of dev@example.org/);
    expect(await members(s)).toEqual([
      "alice@example.net",
      "bob@example.com",
      "carol@example.net",
      "joiner@example.net",
      "newbie@example.com",
    ]);
    s.sink.clear();

    // the next post reaches them
    await post(s, "<after-join@x>");
    for (const m of [
      "alice@example.net",
      "bob@example.com",
      "carol@example.net",
      "joiner@example.net",
      "newbie@example.com",
    ])
      expect(s.sink.deliveries().get(`<after-join@x> ${m}`), m).toBe(1);
    // a used token is spent
    s.sink.clear();
    await s.inject(
      mail({ from: "newbie@example.com", to: "dev-request@example.org", subject: `confirm ${n.token}` }),
      "dev-request@example.org",
    );
    await s.pump();
    expect(replyTo(s, "newbie@example.com")).toMatch(
      /is unknown \(mistyped, or already used\); nothing was changed/,
    );
  });

  it("unsubscribe (to -request or -leave), confirm, and receive no more posts", async () => {
    const s = t.own(await listSite([dev()]));
    await toRequest(s, { from: "bob@example.com", subject: "Re: what", body: "unsubscribe\nend\njoin" });
    await s.inject(
      mail({ from: "carol@example.net", to: "dev-leave@example.org", subject: "bye" }),
      "dev-leave@example.org",
    );
    await s.pump();
    const b = tokenFor(s, "bob@example.com");
    expect(noticeText(b.message.raw)).toMatch(/asked to unsubscribe bob@example.com from dev@example.org/);
    const reply = replyTo(s, "bob@example.com");
    expect(reply).toMatch(/> unsubscribe\r?\nA confirmation request was sent/);
    // the prose Subject and the line after "end"
    expect(reply).toMatch(/2 more line\(s\) were not read as commands/);
    const c = tokenFor(s, "carol@example.net");
    // still members until they confirm
    await post(s, "<before@x>");
    expect(s.sink.deliveries().get("<before@x> bob@example.com")).toBe(1);
    s.sink.clear();

    await s.inject(
      mail({ from: "bob@example.com", to: "dev-request@example.org", subject: `Re: confirm ${b.token}` }),
      "dev-request@example.org",
    );
    // a reply that went to the -leave address still confirms
    await s.inject(
      mail({ from: "carol@example.net", to: "dev-leave@example.org", subject: `Re: confirm ${c.token}` }),
      "dev-leave@example.org",
    );
    await s.pump();
    expect(replyTo(s, "bob@example.com")).toMatch(/bob@example.com has left dev@example.org/);
    expect(replyTo(s, "carol@example.net")).toMatch(/carol@example.net has left dev@example.org/);
    expect(await members(s)).toEqual(["alice@example.net"]);
    s.sink.clear();

    await post(s, "<after-leave@x>");
    expect(s.sink.deliveries()).toEqual(new Map([["<after-leave@x> alice@example.net", 1]]));
  });

  it("a wrong or an expired token changes nothing, and the reply says why", async () => {
    const s = t.own(await listSite([dev("confirm_expires: 1s")]));
    const before = await members(s);
    // a token nobody issued, for a join and (as bob) for a leave
    await toRequest(s, { from: "eve@example.com", subject: "confirm AAAAAAAAAAAAAAAAAAAAAAAA" });
    await toRequest(s, { from: "bob@example.com", subject: "confirm not-a-token" });
    await s.pump();
    expect(replyTo(s, "eve@example.com")).toMatch(
      /Token "AAAAAAAAAAAAAAAAAAAAAAAA" is unknown \(mistyped, or already used\); nothing was changed/,
    );
    expect(replyTo(s, "bob@example.com")).toMatch(/is unknown .*nothing was changed/);
    expect(await members(s)).toEqual(before);
    s.sink.clear();

    // a real token, used after confirm_expires (1s)
    await toRequest(s, { from: "eve@example.com", subject: "join" });
    await toRequest(s, { from: "bob@example.com", subject: "leave" });
    await s.pump();
    const e = tokenFor(s, "eve@example.com");
    const b = tokenFor(s, "bob@example.com");
    s.sink.clear();
    await sleep(1500);
    await s.inject(
      mail({ from: "eve@example.com", to: "dev-request@example.org", subject: `Re: confirm ${e.token}` }),
      "dev-request@example.org",
    );
    await s.inject(
      mail({ from: "bob@example.com", to: "dev-request@example.org", subject: `Re: confirm ${b.token}` }),
      "dev-request@example.org",
    );
    await s.pump();
    expect(replyTo(s, "eve@example.com")).toMatch(
      new RegExp(`Token ${e.token} has expired; nothing was changed. Send the join request again.`),
    );
    expect(replyTo(s, "bob@example.com")).toMatch(
      new RegExp(`Token ${b.token} has expired; nothing was changed. Send the leave request again.`),
    );
    expect(await members(s)).toEqual(before);
    const state = await s.readState("dev@example.org");
    expect(state.added).toEqual([]);
    expect(state.removed).toEqual([]);
  });
});

describe("robots and storms", () => {
  it("never replies to an auto-responder, the null sender or bulk mail, and changes nothing for them", async () => {
    const s = t.own(await listSite([dev()]));
    const robots = [
      {
        raw: mail({
          from: "away@example.com",
          to: "dev-request@example.org",
          subject: "Auto: subscribe",
          headers: ["Auto-Submitted: auto-replied"],
        }),
        from: undefined,
        to: "dev-request@example.org",
      },
      {
        raw: mail({
          from: "away@example.com",
          to: "dev-join@example.org",
          subject: "Out of office",
          headers: ["Auto-Submitted: auto-replied"],
        }),
        from: undefined,
        to: "dev-join@example.org",
      },
      {
        raw: mail({ from: "someone@example.com", to: "dev-request@example.org", subject: "subscribe" }),
        from: "<>",
        to: "dev-request@example.org",
      },
      {
        raw: mail({
          from: "news@example.com",
          to: "dev-request@example.org",
          subject: "help",
          headers: ["Precedence: bulk"],
        }),
        from: undefined,
        to: "dev-request@example.org",
      },
      {
        raw: mail({
          from: "away@example.com",
          to: "dev-request@example.org",
          subject: "help",
          headers: ["X-Autoreply: yes"],
        }),
        from: undefined,
        to: "dev-request@example.org",
      },
      {
        raw: mail({ from: "MAILER-DAEMON@example.com", to: "dev-leave@example.org", subject: "failure" }),
        from: undefined,
        to: "dev-leave@example.org",
      },
    ];
    for (const r of robots) await s.inject(r.raw, r.to, r.from);
    await s.pump();
    expect(s.sink.messages).toEqual([]);
    expect(s.logs.filter((l) => l.msg === "command mail from a robot ignored")).toHaveLength(robots.length);
    // no token was issued, no member changed
    const state = await s.readState("dev@example.org").catch(() => null);
    expect(state === null || Object.keys(state.tokens).length === 0).toBe(true);
  });

  it("answers one address at most max_replies_per_hour times, however many requests it sends", async () => {
    const s = t.own(await listSite([dev("max_replies_per_hour: 3")]));
    for (let i = 0; i < 6; i++) {
      await toRequest(s, { from: "chatty@example.com", subject: "help" });
      await toRequest(s, { from: "joiner@example.com", subject: "subscribe" });
      await s.inject(
        mail({ from: "leaver@example.com", to: "dev-join@example.org", subject: "x" }),
        "dev-join@example.org",
      );
    }
    await s.pump();
    for (const who of ["chatty@example.com", "joiner@example.com", "leaver@example.com"]) {
      const got = s.to(who).length;
      expect(got, who).toBeGreaterThan(0);
      expect(got, who).toBeLessThanOrEqual(3);
    }
    // the help replies really were replies
    expect(s.to("chatty@example.com")).toHaveLength(3);
    expect(noticeText(s.to("chatty@example.com")[0]!.raw)).toMatch(/Commands for dev@example.org/);
    // a join costs the joiner two messages (reply and confirmation): the second request is told
    // why it got no confirmation, the rest are not answered
    const joiner = s.to("joiner@example.com").map((m) => headerValues(m.raw, "subject")[0] ?? "");
    expect(joiner.filter((x) => x.startsWith("confirm "))).toHaveLength(1);
    expect(
      s
        .to("joiner@example.com")
        .some((m) => /Not done: too many messages to joiner@example.com this hour/.test(noticeText(m.raw))),
    ).toBe(true);
    expect(s.logs.filter((l) => l.msg === "reply limit reached; request ignored")).toHaveLength(
      3 * 6 - 2 - 2 - 3,
    );
  });

  it("refuses to subscribe a list address: no confirmation is mailed to a list or its robots", async () => {
    const s = t.own(
      await listSite([
        dev("", "accept"),
        {
          address: "other@example.org",
          owners: ["owner@example.org"],
          members: ["zoe@example.com"],
          extra: "nonmembers: accept",
        },
      ]),
    );
    const body = [
      "subscribe dev@example.org",
      "subscribe DEV-Request@example.org",
      "join other@example.org",
      "join dev-bounces+x=example.com@example.org",
    ].join("\n");
    await toRequest(s, { from: "eve@example.com", subject: "hello", body });
    await s.pump();
    // the one message out is eve's reply, and every command in it was refused
    expect(s.sink.messages.map((m) => m.to)).toEqual([["eve@example.com"]]);
    const reply = replyTo(s, "eve@example.com");
    expect(reply.match(/Not done: /g)).toHaveLength(4);
    expect(await members(s)).toEqual(["alice@example.net", "bob@example.com", "carol@example.net"]);
  });
});
