/**
 * Posts to a list end to end (issue 5): `qrunner inject`, the real incoming, archive and outgoing
 * runners (`start --runner=NAME --slice=0/1 --once`), and a recording SMTP server on loopback.
 * A member's post reaches every enabled member once, with the list headers, the subject prefix
 * and every other byte as sent; loops are discarded; oversize posts are refused with a notice (never
 * to a robot); -owner mail reaches the owners.
 */
import { simpleParser } from "mailparser";
import { describe, expect, it } from "vitest";
import { testScope } from "../helpers/scope.js";
import { fixture, headerValues, listSite, mail, noticeText, splitRaw } from "./lists-harness.js";

const t = testScope();

const MEMBERS = ["alice@example.net", "Bob@Example.com", "carol@example.net", "dave@example.net"];
const OWNERS = ["owner@example.org", "owner2@example.org"];
const DEV = {
  address: "dev@example.org",
  owners: OWNERS,
  members: MEMBERS,
  extra: ['description: "Developers"', 'subject_prefix: "[dev] "', "nonmembers: hold", "max_size: 4KB"].join(
    "\n",
  ),
};

/** The fields the list adds at the top of a post, in order (RFC 2369, RFC 2919, X-BeenThere, Precedence). */
const LIST_FIELDS = [
  "List-Id: Developers <dev.example.org>",
  "List-Post: <mailto:dev@example.org>",
  "List-Help: <mailto:dev-request@example.org?subject=help>",
  "List-Subscribe: <mailto:dev-join@example.org>",
  "List-Unsubscribe: <mailto:dev-leave@example.org>",
  "List-Owner: <mailto:dev-owner@example.org>",
  "X-BeenThere: dev@example.org",
  "Precedence: list",
];

/** What SMTP makes of a message: every bare LF sent as CRLF (RFC 5321 section 2.3.8). */
function onTheWire(raw: Buffer): Buffer {
  return Buffer.from(raw.toString("latin1").replace(/\r?\n/g, "\r\n"), "latin1");
}

/** Header lines (unfolded) other than Subject and the fields the list replaces, in order. */
function otherHeaderLines(raw: Buffer): string[] {
  const replaced = /^(list-[a-z-]+|precedence|subject)\s*:/i;
  return splitRaw(raw)
    .header.split(/\r?\n(?![ \t])/)
    .filter((l) => !replaced.test(l) && l !== "X-BeenThere: dev@example.org");
}

async function subjectOf(raw: Buffer): Promise<string> {
  return (await simpleParser(raw)).subject ?? "";
}

describe("a member's post", () => {
  it("reaches every enabled member once, with the list headers and the body unchanged byte for byte", async () => {
    // a members file too, naming alice again (the domain in capitals) and erin; two recipients a transaction
    const s = t.own(
      await listSite([{ ...DEV, extra: `${DEV.extra}\nmembers_file: dev.members` }], {
        smtp: "max_recipients: 2",
        files: { "dev.members": "# more members\nalice@EXAMPLE.NET\nerin@example.com\n" },
      }),
    );
    expect((await s.cli(["members", "dev@example.org", "--disable", "dave@example.net"])).code).toBe(0);
    const posts = [
      // 8-bit latin1 body, LF line endings; the From header is no member, the envelope sender is
      {
        raw: await fixture("messages", "latin1-8bit.eml"),
        from: "alice@example.net",
        subject: "[dev] Compte rendu",
      },
      // multipart with an attachment, CRLF; the envelope sender comes from the From header
      {
        raw: await fixture("messages", "multipart-attachment.eml"),
        from: undefined,
        subject: "[dev] Logs from the failed run",
      },
      // the domain of a member's address compares case-insensitively
      {
        raw: await fixture("messages", "crlf.eml"),
        from: "Bob@EXAMPLE.COM",
        subject: "[dev] Build farm is down",
      },
    ];
    for (const p of posts) await s.inject(p.raw, "dev@example.org", p.from);

    // in the queue, before SMTP: the decorated post is the list fields, then the original bytes with
    // only the Subject changed (the LF fixture keeps its LF endings)
    await s.runOnce("incoming");
    const queued = (await s.peek("outgoing")).filter((e) => e.meta.kind === "post");
    // four enabled members, two a transaction
    expect(queued).toHaveLength(posts.length * 2);
    for (const p of posts) {
      const id = headerValues(p.raw, "message-id")[0] ?? "";
      const copies = queued.filter((e) => headerValues(e.message, "message-id")[0] === id);
      expect(copies, id).toHaveLength(2);
      expect(copies.flatMap((c) => c.meta.recipients).sort()).toEqual([
        "Bob@Example.com",
        "alice@example.net",
        "carol@example.net",
        "erin@example.com",
      ]);
      const q = copies[0];
      const eol = p.raw.includes("\r\n") ? "\r\n" : "\n";
      const subjectLine = new RegExp(`^Subject: .*${eol === "\r\n" ? "\\r\\n" : "\\n"}`, "m");
      const expected = Buffer.concat([
        Buffer.from(LIST_FIELDS.map((f) => f + eol).join(""), "latin1"),
        Buffer.from(p.raw.toString("latin1").replace(subjectLine, `Subject: ${p.subject}${eol}`), "latin1"),
      ]);
      expect(q!.message.equals(expected), `queued copy of ${id}`).toBe(true);
    }

    await s.pump();
    // the domain goes out lowercased, the local part as written
    const enabled = ["alice@example.net", "Bob@example.com", "carol@example.net", "erin@example.com"];
    const deliveries = s.sink.deliveries();
    for (const p of posts) {
      const id = headerValues(p.raw, "message-id")[0] ?? "";
      for (const m of enabled) expect(deliveries.get(`${id} ${m}`), `${id} to ${m}`).toBe(1);
      expect(deliveries.get(`${id} dave@example.net`)).toBeUndefined();
    }
    expect(s.sink.deliveryCount()).toBe(posts.length * enabled.length);
    expect(s.sink.messages.every((m) => m.to.length <= 2)).toBe(true);
    for (const msg of s.sink.messages) {
      expect(msg.from).toBe("dev-bounces@example.org");
      const p = posts.find((x) => headerValues(x.raw, "message-id")[0] === msg.messageId);
      expect(p).toBeDefined();
      // every list field once, as the first lines of the header
      const header = splitRaw(msg.raw).header.split("\r\n");
      expect(header.slice(0, LIST_FIELDS.length)).toEqual(LIST_FIELDS);
      for (const f of ["List-Id", "List-Post", "X-BeenThere", "Precedence"])
        expect(headerValues(msg.raw, f)).toHaveLength(1);
      expect(headerValues(msg.raw, "subject")).toEqual([p!.subject]);
      // the body byte for byte, and every other header line as sent, in order
      expect(
        splitRaw(msg.raw).body.equals(splitRaw(onTheWire(p!.raw)).body),
        `body of ${msg.messageId}`,
      ).toBe(true);
      expect(otherHeaderLines(msg.raw)).toEqual(otherHeaderLines(onTheWire(p!.raw)));
    }
    // the 8-bit body decodes as the poster wrote it
    const latin1 = s.sink.messages.find((m) => m.messageId === "<5f3c.rene@example.fr>");
    expect((await simpleParser(latin1!.raw)).text).toContain("Voilà le compte rendu de la réunion de jeudi.");
    // nobody was sent a notice
    expect(s.to("owner@example.org")).toEqual([]);
  });

  it("gets the subject prefix once: not again after Re: or inside an encoded word, correctly on RFC 2047 subjects", async () => {
    const s = t.own(await listSite([DEV]));
    const cases: { raw: Buffer; want: string; raws?: string }[] = [
      // already prefixed after Re: (and carrying another list's List-* fields, which are replaced)
      {
        raw: await fixture("messages", "re-prefixed.eml"),
        want: "Re: [dev] Release plan for 2.0",
        raws: "Re: [dev] Release plan for 2.0",
      },
      {
        raw: mail({ from: "alice@example.net", to: "dev@example.org", subject: "[dev] already there" }),
        want: "[dev] already there",
        raws: "[dev] already there",
      },
      {
        raw: mail({ from: "alice@example.net", to: "dev@example.org", subject: "AW: RE: [DEV]  shouting" }),
        want: "AW: RE: [DEV]  shouting",
      },
      // the prefix inside an encoded word counts as there
      {
        raw: mail({
          from: "alice@example.net",
          to: "dev@example.org",
          subject: "=?UTF-8?Q?Re:_=5Bdev=5D_Caf=C3=A9?=",
        }),
        want: "Re: [dev] Café",
      },
      // RFC 2047 B and Q subjects get the prefix and still decode
      {
        raw: await fixture("messages", "subject-2047-b.eml"),
        want: "[dev] Übersetzung für die Dokumentation",
      },
      { raw: await fixture("messages", "subject-2047-q.eml"), want: "[dev] Café meeting — agenda" },
      {
        raw: mail({ from: "alice@example.net", to: "dev@example.org", subject: "plain" }),
        want: "[dev] plain",
        raws: "[dev] plain",
      },
      // no Subject at all
      { raw: await fixture("messages", "no-subject-folded.eml"), want: "[dev] (no subject)" },
    ];
    for (const c of cases) await s.inject(c.raw, "dev@example.org", "alice@example.net");
    await s.pump();
    for (const c of cases) {
      const id = headerValues(c.raw, "message-id")[0] ?? "";
      const got = s.sink.messages.filter((m) => m.messageId === id);
      expect(got, id).toHaveLength(1);
      const raw = got[0]!.raw;
      expect(headerValues(raw, "subject"), id).toHaveLength(1);
      expect(await subjectOf(raw), id).toBe(c.want);
      if (c.raws !== undefined) expect(headerValues(raw, "subject")[0]).toBe(c.raws);
    }
    // the upstream list's fields are replaced by ours; its X-BeenThere is kept (loops through chained lists)
    const re = s.sink.messages.find((m) => m.messageId === "<reply-1@example.net>")!.raw;
    expect(headerValues(re, "list-id")).toEqual(["Developers <dev.example.org>"]);
    expect(headerValues(re, "list-unsubscribe")).toEqual(["<mailto:dev-leave@example.org>"]);
    expect(headerValues(re, "list-unsubscribe-post")).toEqual([]);
    expect(headerValues(re, "precedence")).toEqual(["list"]);
    expect(headerValues(re, "x-beenthere").sort()).toEqual(["announce@example.com", "dev@example.org"]);
  });
});

describe("posts that are not distributed", () => {
  it("discards a loop: a post carrying this list's List-Id or X-BeenThere", async () => {
    const s = t.own(await listSite([DEV]));
    const loops = [
      mail({
        from: "alice@example.net",
        to: "dev@example.org",
        subject: "[dev] seen",
        id: "<loop-1@x>",
        headers: ["List-Id: Developers <dev.example.org>"],
      }),
      mail({
        from: "alice@example.net",
        to: "dev@example.org",
        subject: "seen",
        id: "<loop-2@x>",
        headers: ["List-Id: <DEV.Example.ORG>"],
      }),
      mail({
        from: "alice@example.net",
        to: "dev@example.org",
        subject: "seen",
        id: "<loop-3@x>",
        headers: ["X-BeenThere: dev@example.org"],
      }),
      // a nonmember's loop is discarded too, not held
      mail({
        from: "mallory@example.com",
        to: "dev@example.org",
        subject: "seen",
        id: "<loop-4@x>",
        headers: ["X-BeenThere: Dev@Example.org"],
      }),
    ];
    for (const m of loops) await s.inject(m, "dev@example.org");
    await s.pump();
    expect(s.sink.messages).toEqual([]);
    const checked = s.logs.filter((l) => l.msg === "post checked");
    expect(checked).toHaveLength(loops.length);
    for (const l of checked) {
      expect(l["action"]).toBe("discard");
      expect(l["check"]).toBe("loop");
    }
    expect((await s.cli(["held", "dev@example.org", "--json"])).stdout.trim()).toBe("[]");
    expect(await s.entries("archive")).toEqual([]);
  });

  it("rejects an oversize post with a notice to the sender, and never notifies a null, auto-submitted or bulk sender", async () => {
    const s = t.own(await listSite([DEV]));
    const big = "x".repeat(70) + "\r\n";
    const body = big.repeat(80); // about 5.6 KB, over max_size 4KB
    const posts = [
      {
        raw: mail({
          from: "alice@example.net",
          to: "dev@example.org",
          subject: "big one",
          id: "<big-1@x>",
          body,
        }),
        from: undefined,
      },
      // the null sender (a bounce or auto-reply to the posting address)
      {
        raw: mail({
          from: "carol@example.net",
          to: "dev@example.org",
          subject: "big",
          id: "<big-2@x>",
          body,
        }),
        from: "<>",
      },
      {
        raw: mail({
          from: "carol@example.net",
          to: "dev@example.org",
          subject: "big",
          id: "<big-3@x>",
          body,
          headers: ["Auto-Submitted: auto-replied"],
        }),
        from: undefined,
      },
      {
        raw: mail({
          from: "Bob@Example.com",
          to: "dev@example.org",
          subject: "big",
          id: "<big-4@x>",
          body,
          headers: ["Precedence: bulk"],
        }),
        from: undefined,
      },
      {
        raw: mail({
          from: "mallory@example.com",
          to: "dev@example.org",
          subject: "big",
          id: "<big-5@x>",
          body,
          headers: ["Precedence: junk"],
        }),
        from: undefined,
      },
      {
        raw: mail({
          from: "MAILER-DAEMON@example.com",
          to: "dev@example.org",
          subject: "big",
          id: "<big-6@x>",
          body,
        }),
        from: undefined,
      },
    ];
    for (const p of posts) await s.inject(p.raw, "dev@example.org", p.from);
    await s.pump();
    // one message in all: alice's notice
    expect(s.sink.messages.map((m) => m.to)).toEqual([["alice@example.net"]]);
    const n = s.sink.messages[0]!;
    expect(n.from).toBe("dev-bounces@example.org");
    expect(headerValues(n.raw, "from")).toEqual(["dev-owner@example.org"]);
    expect(headerValues(n.raw, "subject")).toEqual([
      "Your message to dev@example.org was rejected: too large",
    ]);
    expect(headerValues(n.raw, "in-reply-to")).toEqual(["<big-1@x>"]);
    expect(headerValues(n.raw, "auto-submitted")).toEqual(["auto-replied"]);
    expect(noticeText(n.raw)).toMatch(/more than the 4000 bytes/);
    const checked = s.logs.filter((l) => l.msg === "post checked");
    expect(checked.map((l) => `${String(l["action"])} ${String(l["check"])}`)).toEqual(
      posts.map(() => "reject size"),
    );
    expect(await s.entries("archive")).toEqual([]);
  });
});

describe("owner mail", () => {
  it("reaches the owners from the list's -bounces address, unchanged", async () => {
    const s = t.own(await listSite([DEV]));
    const m = mail({
      from: "stranger@example.com",
      to: "dev-owner@example.org",
      subject: "question for the owners",
      id: "<own-1@x>",
    });
    await s.inject(m, "dev-owner@example.org");
    await s.pump();
    expect(s.sink.messages).toHaveLength(1);
    const got = s.sink.messages[0]!;
    expect(got.from).toBe("dev-bounces@example.org");
    expect(got.to.sort()).toEqual([...OWNERS].sort());
    expect(got.raw.equals(m)).toBe(true);
    for (const member of MEMBERS) expect(s.to(member)).toEqual([]);
  });
});
