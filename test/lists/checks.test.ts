import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  checkLoop,
  checkSize,
  noticeAllowed,
  noticeDecision,
  posterOutcome,
  screenPost,
} from "../../src/lists/checks.js";
import { decorate } from "../../src/lists/headers.js";
import { MessageHeader } from "../../src/lists/message.js";
import { composeNotice } from "../../src/lists/notices.js";
import { sameAddress } from "../../src/lists/addresses.js";
import type { ListConfig } from "../../src/lists/schema.js";
import { fixture, makeList } from "../fixtures/messages/list.js";

const b = (s: string): Buffer => Buffer.from(s, "latin1");
const memberOf =
  (list: ListConfig) =>
  (a: string): boolean =>
    list.allMembers.some((m) => sameAddress(m, a));

describe("checkLoop", () => {
  const list = makeList();

  it("discards what this list already distributed", () => {
    const out = decorate(fixture("plain-lf.eml"), list);
    const r = checkLoop(out, list);
    expect(r.action).toBe("discard");
    expect(r.reason).toMatch(/List-Id <dev\.example\.org>/);
  });

  it("recognises X-BeenThere alone, in any case", () => {
    expect(checkLoop(b("X-BeenThere: DEV@example.org\nSubject: x\n\n"), list).action).toBe("discard");
    expect(checkLoop(b("List-Id: Dev <DEV.Example.org>\n\n"), list).action).toBe("discard");
    expect(checkLoop(b("List-Id: dev.example.org\n\n"), list).action).toBe("discard"); // obsolete form, no brackets
  });

  it("lets other lists' traffic through", () => {
    const r = checkLoop(fixture("re-prefixed.eml"), list);
    expect(r.action).toBe("continue");
    expect(
      checkLoop(b("List-Id: <dev.example.org.evil>\nX-BeenThere: dev@example.org.evil\n\n"), list).action,
    ).toBe("continue");
  });
});

describe("checkSize", () => {
  it("rejects over max_size, with the sizes in the reason", () => {
    const list = makeList({ max_size: 100 });
    const raw = fixture("plain-lf.eml");
    const r = checkSize(raw, list);
    expect(r.action).toBe("reject");
    expect(r.reason).toBe(`message is ${raw.length} bytes, over the list's max_size of 100`);
    expect(checkSize(raw.subarray(0, 100), list).action).toBe("continue");
    expect(checkSize(raw, makeList({ max_size: 0 })).action).toBe("continue");
  });
});

describe("posterOutcome", () => {
  const list = makeList({ nonmembers: "hold" });
  const isMember = memberOf(list);

  it("accepts members by envelope sender or From, owners too", () => {
    expect(posterOutcome("alice@example.net", undefined, list, isMember)).toMatchObject({
      action: "accept",
      poster: "alice@example.net",
    });
    expect(
      posterOutcome("bounce-123@mailer.example.net", "Bob <Bob@EXAMPLE.com>", list, isMember),
    ).toMatchObject({
      action: "accept",
      poster: "Bob@EXAMPLE.com",
    });
    expect(posterOutcome("owner@example.org", undefined, list, isMember).reason).toMatch(/owner/);
  });

  it("is not fooled by an address in the display name", () => {
    const r = posterOutcome(
      "mallory@example.com",
      '"alice@example.net" <mallory@example.com>',
      list,
      isMember,
    );
    expect(r.action).toBe("hold");
    expect(r.reason).toBe("mallory@example.com is not a member; nonmembers: hold");
  });

  it("applies the list's nonmember action", () => {
    for (const nonmembers of ["accept", "hold", "reject", "discard"] as const) {
      const l = makeList({ nonmembers });
      expect(posterOutcome("x@example.com", "X <y@example.com>", l, memberOf(l))).toMatchObject({
        action: nonmembers,
        poster: "x@example.com",
        reason: `x@example.com (From: y@example.com) is not a member; nonmembers: ${nonmembers}`,
      });
    }
  });

  it("discards posts with the null sender", () => {
    expect(posterOutcome("", "alice@example.net", list, isMember).action).toBe("discard");
    expect(posterOutcome("<>", undefined, list, isMember).action).toBe("discard");
  });
});

describe("noticeDecision", () => {
  const plain = fixture("plain-lf.eml");

  it("allows an ordinary sender", () => {
    expect(noticeDecision("alice@example.net", plain)).toEqual({ allowed: true, reason: "ordinary sender" });
  });

  it("refuses robots and the null sender", () => {
    for (const s of [
      "",
      "<>",
      "MAILER-DAEMON@mx.example.net",
      "postmaster@example.net",
      "noreply@example.com",
      "no-reply@example.com",
      "do-not-reply@example.com",
      "dev-bounces@example.org",
      "dev-bounces+alice=example.net@example.org",
      "other-request@lists.example.com",
      "owner-announce@example.com",
      "announce-owner@example.com",
    ]) {
      expect(noticeAllowed(s, plain), s).toBe(false);
    }
  });

  it("knows robots with a +detail, and reads a local part full of '+' in linear time", () => {
    for (const s of ["dev-request+x@example.org", "x+y-request@example.org", "postmaster+z@example.net"])
      expect(noticeAllowed(s, plain), s).toBe(false);
    for (const s of [
      "x+request@example.org",
      "-request@example.org",
      "owner-@example.org",
      "posty@example.net",
    ])
      expect(noticeAllowed(s, plain), s).toBe(true);
    // the old single regex (.+-request(?:\+.*)?$) backtracked quadratically on this
    expect(noticeAllowed(`a${"+".repeat(200_000)}x@example.net`, plain)).toBe(true);
    expect(noticeAllowed(`a${"+".repeat(200_000)}-bounces@example.net`, plain)).toBe(false);
  });

  it("decides robots as the old single regex did", () => {
    const OLD =
      /^(?:mailer-daemon|mailerdaemon|mail-daemon|postmaster|nobody|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|listserv|majordomo|mailman|owner-.+|.+-(?:bounces?|request|owner|admin|confirm|join|leave))(?:\+.*)?$/i;
    const part = fc.constantFrom(
      "a",
      "-",
      "+",
      "_",
      ".",
      "bounce",
      "s",
      "request",
      "owner-",
      "owner",
      "Mailer-Daemon",
      "no",
      "reply",
      "do",
      "not",
      "Join",
    );
    fc.assert(
      fc.property(fc.array(part, { maxLength: 8 }), (parts) => {
        const local = parts.join("");
        if (local === "") return;
        expect(noticeAllowed(`${local}@example.net`, plain), local).toBe(!OLD.test(local));
      }),
      { numRuns: 3000 },
    );
  });

  it("refuses automatic, bulk and list mail", () => {
    const cases: [string, RegExp][] = [
      ["Auto-Submitted: auto-generated\n", /Auto-Submitted: auto-generated/],
      ["Auto-Submitted: auto-replied; owner-email=x@y\n", /auto-replied/],
      ["Precedence: bulk\n", /Precedence: bulk/],
      ["Precedence: JUNK\n", /junk/],
      ["Precedence: list\n", /list/],
      ["List-Id: <other.example.com>\n", /list-id/],
      ["X-BeenThere: other@example.com\n", /x-beenthere/],
      ["X-Loop: someone@example.com\n", /x-loop/],
      ["X-Auto-Response-Suppress: OOF, AutoReply\n", /Suppress/],
      ["Content-Type: multipart/report; report-type=delivery-status; boundary=x\n", /report/],
    ];
    for (const [hdr, re] of cases) {
      const d = noticeDecision("alice@example.net", b(`From: alice@example.net\n${hdr}Subject: x\n\nbody\n`));
      expect(d.allowed, hdr).toBe(false);
      expect(d.reason, hdr).toMatch(re);
    }
    expect(noticeAllowed("dave@example.com", fixture("auto-reply.eml"))).toBe(false);
    expect(noticeAllowed("alice@example.net", b("Auto-Submitted: no\nPrecedence: first-class\n\n"))).toBe(
      true,
    );
  });

  it("never answers qrunner's own notices", () => {
    const n = composeNotice({
      from: "dev-owner@example.org",
      to: "alice@example.net",
      subject: "x",
      text: "y",
    });
    expect(noticeAllowed("alice@example.net", n)).toBe(false);
    expect(noticeAllowed("alice@example.net", MessageHeader.of(n))).toBe(false);
  });
});

describe("screenPost", () => {
  it("runs loop, then size, then poster", () => {
    const list = makeList({ max_size: 200, nonmembers: "reject" });
    const isMember = memberOf(list);
    const looped = decorate(fixture("plain-lf.eml"), list); // also too big and from a nonmember
    expect(screenPost(looped, "x@example.com", list, isMember)).toMatchObject({
      action: "discard",
      check: "loop",
      notify: false,
    });
    const big = fixture("plain-lf.eml");
    expect(screenPost(big, "x@example.com", list, isMember)).toMatchObject({
      action: "reject",
      check: "size",
      notify: true,
    });
    const small = b("From: x@example.com\nSubject: hi\n\nhi\n");
    expect(screenPost(small, "x@example.com", list, isMember)).toMatchObject({
      action: "reject",
      check: "poster",
      notify: true,
    });
    expect(screenPost(small, "alice@example.net", list, isMember)).toMatchObject({
      action: "accept",
      notify: false,
    });
    const auto = b("From: x@example.com\nAuto-Submitted: auto-replied\n\nhi\n");
    expect(screenPost(auto, "x@example.com", list, isMember)).toMatchObject({
      action: "reject",
      notify: false,
    });
  });
});
