import { describe, expect, it } from "vitest";
import { simpleParser } from "mailparser";
import {
  HeaderInjectionError,
  composeNotice,
  quotedPrintable,
  rfc5322Date,
  type Notice,
} from "../../src/lists/notices.js";
import {
  bounceDisabledMember,
  bounceDisabledOwners,
  commandReply,
  confirmRequest,
  deliveryGaveUp,
  heldForModeration,
  heldNoticeToPoster,
  helpText,
  rejectedByModerator,
  rejectedForSize,
  rejectedNonmember,
} from "../../src/lists/notice-texts.js";
import { checkMessage } from "../../src/lists/message-check.js";
import { getHeader, splitHeader } from "../../src/lists/message.js";
import { makeList } from "../fixtures/messages/list.js";

const list = makeList({ owners: ["owner@example.org", "second@example.org"] });
const base = { from: "dev-owner@example.org", to: "alice@example.net", subject: "Hello", text: "Body\n" };

/** Well-formed on the wire: CRLF only, header lines within 78..998, parses. */
function assertWireFormat(msg: Buffer): void {
  expect(checkMessage(msg)).toEqual({ ok: true });
  const s = msg.toString("latin1");
  expect(s.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
  const header = splitHeader(msg)?.header.toString("latin1") ?? "";
  for (const line of header.split("\r\n")) expect(line.length).toBeLessThanOrEqual(998);
  // eslint-disable-next-line no-control-regex
  expect(header).toMatch(/^[\x00-\x7f]*$/);
}

describe("composeNotice", () => {
  it("writes a complete RFC 5322 / RFC 3834 message", async () => {
    const date = new Date(Date.UTC(2024, 10, 28, 13, 5, 9));
    const msg = composeNotice({ ...base, list, date, inReplyTo: "abc@example.net", fromName: "dev list" });
    assertWireFormat(msg);
    expect(getHeader(msg, "date")).toBe("Thu, 28 Nov 2024 13:05:09 +0000");
    expect(getHeader(msg, "message-id")).toMatch(/^<[0-9a-z]+\.[0-9a-f]{18}@example\.org>$/);
    expect(getHeader(msg, "in-reply-to")).toBe("<abc@example.net>");
    expect(getHeader(msg, "references")).toBe("<abc@example.net>");
    expect(getHeader(msg, "auto-submitted")).toBe("auto-replied");
    expect(getHeader(msg, "precedence")).toBe("bulk");
    expect(getHeader(msg, "mime-version")).toBe("1.0");
    expect(getHeader(msg, "content-type")).toBe("text/plain; charset=utf-8");
    expect(getHeader(msg, "content-transfer-encoding")).toBe("7bit");
    const p = await simpleParser(msg);
    expect(p.from?.value[0]).toEqual({ address: "dev-owner@example.org", name: "dev list" });
    expect(p.text).toBe("Body\n");
    expect(composeNotice(base).toString()).toMatch(/Auto-Submitted: auto-generated\r\n/);
    expect(getHeader(composeNotice({ ...base, autoSubmitted: "auto-replied" }), "auto-submitted")).toBe(
      "auto-replied",
    );
  });

  it("encodes non-ASCII subject and text (quoted-printable) and reads back", async () => {
    const text = "Grüße aus Köln — ça va?\nFrom the list\n" + "é".repeat(100) + "\n";
    const msg = composeNotice({ ...base, subject: "Ünïcödé subject ".repeat(6).trim(), text });
    assertWireFormat(msg);
    expect(getHeader(msg, "content-transfer-encoding")).toBe("quoted-printable");
    const body = msg.toString("latin1").split("\r\n\r\n")[1] ?? "";
    for (const line of body.split("\r\n")) expect(line.length).toBeLessThanOrEqual(76);
    expect(body).toContain("=46rom the list"); // survives an mbox
    const p = await simpleParser(msg);
    expect(p.subject).toBe("Ünïcödé subject ".repeat(6).trim());
    expect(p.text).toBe(text);
  });

  it("folds long recipient lists and subjects", async () => {
    const to = Array.from({ length: 12 }, (_, i) => `owner${i}@example.org`);
    const msg = composeNotice({ ...base, to, subject: "word ".repeat(60).trim() });
    assertWireFormat(msg);
    const p = await simpleParser(msg);
    const value = p.to && !Array.isArray(p.to) ? p.to.value : [];
    expect(value.map((a) => a.address)).toEqual(to);
    expect(p.subject).toBe("word ".repeat(60).trim());
  });

  it("throws HeaderInjectionError on CR, LF or NUL in any header input", () => {
    const evil = ["x\r\nBcc: victim@example.com", "x\nBcc: v@example.com", "x\rY", "x\0y"];
    for (const e of evil) {
      expect(() => composeNotice({ ...base, subject: e })).toThrow(HeaderInjectionError);
      expect(() => composeNotice({ ...base, from: `a${e}@example.org` })).toThrow(HeaderInjectionError);
      expect(() => composeNotice({ ...base, to: `a${e}@example.org` })).toThrow(HeaderInjectionError);
      expect(() => composeNotice({ ...base, to: ["ok@example.org", `a@example.org${e}`] })).toThrow(
        HeaderInjectionError,
      );
      expect(() => composeNotice({ ...base, fromName: e })).toThrow(HeaderInjectionError);
      expect(() => composeNotice({ ...base, inReplyTo: `<a@b>${e}` })).toThrow(HeaderInjectionError);
    }
    // more recipients smuggled in without a line break
    expect(() => composeNotice({ ...base, to: "a@example.org, b@example.org" })).toThrow(
      HeaderInjectionError,
    );
    expect(() => composeNotice({ ...base, to: [] })).toThrow(HeaderInjectionError);
    expect(() =>
      confirmRequest(list, { to: "a@example.net", token: "abc\r\nBcc: x@y.z", action: "join" }),
    ).toThrow(HeaderInjectionError);
    try {
      composeNotice({ ...base, subject: "a\r\nb" });
    } catch (err) {
      expect((err as HeaderInjectionError).code).toBe("EHEADER_INJECTION");
      expect((err as Error).message).toContain("Subject");
    }
  });

  it("formats dates and quoted-printable per the RFCs", () => {
    expect(rfc5322Date(new Date(Date.UTC(2025, 0, 5, 1, 2, 3)))).toBe("Sun, 5 Jan 2025 01:02:03 +0000");
    expect(quotedPrintable("a = b \r\ntab\t")).toBe("a =3D b=20\r\ntab=09");
  });
});

describe("ready-made notices", () => {
  const post = { poster: "x@example.com", subject: "Offer", messageId: "<m1@example.com>" };

  async function check(n: Notice, to: string[], subject: RegExp, body: RegExp[]): Promise<void> {
    expect(n.sender).toBe("dev-bounces@example.org");
    expect(n.recipients).toEqual(to);
    assertWireFormat(n.message);
    const p = await simpleParser(n.message);
    expect(p.subject).toMatch(subject);
    for (const re of body) expect(p.text).toMatch(re);
  }

  it("rejections and holds", async () => {
    await check(
      rejectedForSize(list, { ...post, size: 2_000_000 }),
      ["x@example.com"],
      /rejected: too large/,
      [/2000000 bytes/, /1000000/, /"Offer"/],
    );
    await check(rejectedNonmember(list, post), ["x@example.com"], /was rejected/, [
      /only members/,
      /dev-join@example\.org/,
    ]);
    const held = heldForModeration(list, {
      ...post,
      id: "7k2m9qx4ab",
      reason: "post from a non-member",
      size: 1234,
    });
    await check(held, ["owner@example.org", "second@example.org"], /held for approval \(7k2m9qx4ab\)/, [
      /qrunner approve 7k2m9qx4ab/,
      /qrunner reject 7k2m9qx4ab/,
      /qrunner discard 7k2m9qx4ab/,
      /14 days/,
      /post from a non-member/,
    ]);
    expect(getHeader(held.message, "in-reply-to")).toBeUndefined();
    const custom = heldForModeration(list, {
      ...post,
      id: "id1",
      reason: "r",
      commands: { approve: "ok id1", reject: "no id1", discard: "drop id1" },
    });
    await check(custom, ["owner@example.org", "second@example.org"], /held/, [/ok id1/, /drop id1/]);
    // with a moderation token: answerable by mail, to the owners and the moderators (each once)
    const token = "0123456789abcdef0123456789abcdef01234567";
    const byMail = heldForModeration(
      { ...list, moderators: ["mod@example.org", "Owner@example.org", "owner@example.org"] },
      { ...post, id: "7k2m9qx4ab", reason: "post from a non-member", token },
    );
    await check(
      byMail,
      ["owner@example.org", "second@example.org", "mod@example.org", "Owner@example.org"],
      new RegExp(`^confirm ${token}$`),
      [
        /reply to this message \(it goes to dev-request\+confirm-0123456789abcdef0123456789abcdef01234567@example\.org\)/,
        /reject REASON/,
        /qrunner approve 7k2m9qx4ab/,
      ],
    );
    expect(getHeader(byMail.message, "reply-to")).toBe(`dev-request+confirm-${token}@example.org`);
    expect(() =>
      heldForModeration(list, { ...post, id: "x", reason: "r", token: "abc\r\nBcc: evil@example.com" }),
    ).toThrow(HeaderInjectionError);
    const toPoster = heldNoticeToPoster(list, post);
    await check(toPoster, ["x@example.com"], /awaits approval/, [/held until a list owner/]);
    expect(getHeader(toPoster.message, "in-reply-to")).toBe("<m1@example.com>");
    expect(getHeader(toPoster.message, "auto-submitted")).toBe("auto-replied");
    await check(rejectedByModerator(list, { ...post, reason: "off topic" }), ["x@example.com"], /rejected/, [
      /off topic/,
    ]);
  });

  it("bounce and give-up notices", async () => {
    await check(
      bounceDisabledMember(list, { member: "bob@example.com", score: 5 }),
      ["bob@example.com"],
      /disabled/,
      [/score 5/],
    );
    await check(
      bounceDisabledOwners(list, { member: "bob@example.com", score: 5.5, reason: "550 5.1.1 user unknown" }),
      ["owner@example.org", "second@example.org"],
      /bob@example\.com disabled/,
      [/550 5\.1\.1/, /qrunner members dev@example\.org/],
    );
    const rcpts = Array.from({ length: 25 }, (_, i) => `r${i}@example.net`);
    await check(
      deliveryGaveUp(list, {
        recipients: rcpts,
        ageMs: 5 * 86_400_000,
        lastError: "451 try later",
        subject: "Offer",
      }),
      ["owner@example.org", "second@example.org"],
      /given up for 25/,
      [/5 days/, /451 try later/, /r19@example\.net/, /and 5 more/],
    );
  });

  it("command replies, help and confirmation", async () => {
    const reply = commandReply(list, {
      to: "alice@example.net",
      results: [
        { line: "join", reply: "A confirmation has been sent." },
        { line: "frobnicate", reply: "Unknown command." },
      ],
      ignored: 3,
      inReplyTo: "<req@example.net>",
    });
    await check(reply, ["alice@example.net"], /Results of your commands/, [
      /> join\nA confirmation/,
      /3 more line/,
    ]);
    expect(getHeader(reply.message, "from")).toBe("dev-request@example.org");
    expect(helpText(list)).toMatch(/confirm TOKEN/);
    const c = confirmRequest(list, {
      to: "alice@example.net",
      token: "AbCdEfGhIjKlMnOpQrStUvWx",
      action: "join",
    });
    await check(c, ["alice@example.net"], /^confirm AbCdEfGhIjKlMnOpQrStUvWx$/, [
      /subscribe alice@example\.net to dev@example\.org/,
      /3 days/,
    ]);
  });
});
