import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  InvalidAddressError,
  bouncesAddress,
  decodeVerpMember,
  findList,
  isValidAddress,
  normalizeAddress,
  ownerAddress,
  requestAddress,
  routeRecipient,
  sameAddress,
  validateAddress,
  verpAddress,
} from "../../src/lists/addresses.js";
import type { ListConfig } from "../../src/lists/schema.js";
import { makeList as loadedList } from "../fixtures/messages/list.js";

/** A loaded list with no members (test/fixtures/messages/list.ts). */
const makeList = (address: string, extra: Record<string, unknown> = {}): ListConfig =>
  loadedList({ address, members: [], ...extra });

function listsOf(...addresses: string[]): Map<string, ListConfig> {
  return new Map(addresses.map((a) => [a.toLowerCase(), makeList(a)]));
}

describe("normalizeAddress / sameAddress", () => {
  it("lowercases the domain, keeps the local part, strips angle brackets and blanks", () => {
    expect(normalizeAddress("Alice@Example.NET")).toBe("Alice@example.net");
    expect(normalizeAddress(" <Bob@EXAMPLE.com> ")).toBe("Bob@example.com");
    expect(normalizeAddress("<>")).toBe("");
  });

  it("compares domains case-insensitively and local parts exactly (RFC 5321)", () => {
    expect(sameAddress("alice@EXAMPLE.net", "<alice@example.net>")).toBe(true);
    expect(sameAddress("Alice@example.net", "alice@example.net")).toBe(false);
  });
});

describe("validateAddress", () => {
  it("accepts plain addresses and returns them normalized", () => {
    expect(validateAddress("alice@example.net")).toBe("alice@example.net");
    expect(validateAddress("<a.b+tag=x@Sub.Example.ORG>")).toBe("a.b+tag=x@sub.example.org");
    expect(isValidAddress("o-k_1%2@example.net")).toBe(true);
  });

  const bad: [string, string][] = [
    ["CR", "alice@example.net\r"],
    ["LF", "alice@example.net\nBcc: victim@example.com"],
    ["CRLF inside", "ali\r\nce@example.net"],
    ["NUL", "alice\0@example.net"],
    ["slash", "a/b@example.net"],
    ["dot-dot-slash", "../../etc/passwd@example.net"],
    ["dot-dot", "a..b@example.net"],
    ["dot-dot domain", "a@example..net"],
    ["backtick", "`id`@example.net"],
    ["dollar", "$(id)@example.net"],
    ["semicolon", "a;rm@example.net"],
    ["pipe", "a|b@example.net"],
    ["ampersand", "a&b@example.net"],
    ["single quote", "o'brien@example.net"],
    ["double quote", '"a b"@example.net'],
    ["star", "*@example.net"],
    ["question mark", "a?@example.net"],
    ["braces", "{a,b}@example.net"],
    ["tilde", "~root@example.net"],
    ["space", "a b@example.net"],
    ["tab", "a\tb@example.net"],
    ["backslash", "a\\b@example.net"],
    ["no domain", "alice"],
    ["empty", ""],
    ["two @", "a@b@example.net"],
    ["too long", "a".repeat(250) + "@example.net"],
  ];
  it.each(bad)("rejects %s", (_what, addr) => {
    expect(() => validateAddress(addr)).toThrow(InvalidAddressError);
    expect(isValidAddress(addr)).toBe(false);
  });

  it("error messages never carry a raw CR or LF", () => {
    try {
      validateAddress("x@example.net\r\nBcc: y@example.com");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidAddressError);
      expect((err as Error).message).not.toMatch(/[\r\n]/);
      expect((err as InvalidAddressError).code).toBe("EADDRESS");
    }
  });

  it("nothing it accepts contains a path separator, '..', a control or a shell character", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        if (!isValidAddress(s)) return;
        const n = validateAddress(s);
        expect(n).not.toMatch(/[/\\\0\r\n'"`$;|&<>()*?{}~\s]/);
        expect(n).not.toContain("..");
        expect(n.length).toBeLessThanOrEqual(254);
      }),
    );
  });
});

describe("routeRecipient", () => {
  const lists = listsOf("dev@example.org", "announce@example.org", "dev@other.example");

  it.each([
    ["dev@example.org", "post"],
    ["dev-request@example.org", "request"],
    ["dev-join@example.org", "join"],
    ["dev-leave@example.org", "leave"],
    ["dev-bounces@example.org", "bounces"],
    ["dev-owner@example.org", "owner"],
  ] as const)("%s → %s", (rcpt, role) => {
    const r = routeRecipient(rcpt, lists);
    expect(r?.role).toBe(role);
    expect(r?.list.address).toBe("dev@example.org");
    expect(r?.verpMember).toBeUndefined();
  });

  it("matches list addresses case-insensitively, with angle brackets", () => {
    expect(routeRecipient("<DEV@Example.ORG>", lists)?.role).toBe("post");
    expect(routeRecipient("Dev-Request@EXAMPLE.org", lists)?.role).toBe("request");
    expect(routeRecipient("DEV-BOUNCES@example.org", lists)?.role).toBe("bounces");
  });

  it("tells lists of the same name on different domains apart", () => {
    expect(routeRecipient("dev-owner@other.example", lists)?.list.address).toBe("dev@other.example");
  });

  it("decodes VERP bounces to the member, keeping its local part as written", () => {
    const r = routeRecipient("dev-bounces+alice=example.net@example.org", lists);
    expect(r).toMatchObject({ role: "bounces", verpMember: "alice@example.net" });
    expect(r?.list.address).toBe("dev@example.org");
    expect(routeRecipient("DEV-Bounces+Bob.Smith=Example.COM@example.org", lists)?.verpMember).toBe(
      "Bob.Smith@example.com",
    );
    expect(routeRecipient("dev-bounces+a+tag=x=example.net@example.org", lists)?.verpMember).toBe(
      "a+tag=x@example.net",
    );
  });

  it("round-trips verpAddress through routeRecipient", () => {
    const dev = lists.get("dev@example.org")!;
    for (const m of ["alice@example.net", "Bob+x@Example.com", "a=b@sub.example.net"]) {
      const v = verpAddress(dev, m);
      const r = routeRecipient(v, lists);
      expect(r?.role).toBe("bounces");
      expect(r?.verpMember).toBe(normalizeAddress(m));
    }
    expect(verpAddress(dev, "alice@example.net")).toBe("dev-bounces+alice=example.net@example.org");
  });

  it("routes a VERP address whose member part does not decode to the list's bounces, without a member", () => {
    const r = routeRecipient("dev-bounces+garbage@example.org", lists);
    expect(r?.role).toBe("bounces");
    expect(r?.verpMember).toBeUndefined();
    expect(routeRecipient("dev-bounces+a/b=example.net@example.org", lists)?.verpMember).toBeUndefined();
  });

  it("returns null for anything else", () => {
    for (const rcpt of [
      "nobody@example.org",
      "dev@example.com",
      "dev-unknown@example.org",
      "dev-bounces@other.example.org",
      "devx@example.org",
      "dev",
      "",
      "dev@example.org\r\n",
      "xdev-request@example.org",
    ]) {
      expect(routeRecipient(rcpt, lists)).toBeNull();
    }
  });

  it("routes -request+confirm-TOKEN to the command runner with the token, as written", () => {
    const lists = listsOf("dev@example.org");
    const token = "0123456789abcdefABCDEF0123456789abcdef01";
    expect(routeRecipient(`dev-request+confirm-${token}@example.org`, lists)).toMatchObject({
      role: "request",
      list: { address: "dev@example.org" },
      confirmToken: token,
    });
    expect(routeRecipient("dev-request@example.org", lists)?.confirmToken).toBeUndefined();
    // not a token (too short, bad characters), another tag, another list: no address of ours
    for (const rcpt of [
      "dev-request+confirm-short@example.org",
      `dev-request+confirm-${token}!@example.org`,
      `dev-request+other-${token}@example.org`,
      `devx-request+confirm-${token}@example.org`,
    ])
      expect(routeRecipient(rcpt, lists), rcpt).toBeNull();
  });

  it("prefers a list's own posting address over another list's role address", () => {
    const l = listsOf("dev@example.org", "dev-request@example.org");
    expect(routeRecipient("dev-request@example.org", l)).toMatchObject({
      role: "post",
      list: { address: "dev-request@example.org" },
    });
    expect(routeRecipient("dev-request-request@example.org", l)).toMatchObject({
      role: "request",
      list: { address: "dev-request@example.org" },
    });
  });
});

describe("role addresses and findList", () => {
  const dev = makeList("dev@example.org");
  it("derives the role addresses", () => {
    expect(requestAddress(dev)).toBe("dev-request@example.org");
    expect(bouncesAddress(dev)).toBe("dev-bounces@example.org");
    expect(ownerAddress(dev)).toBe("dev-owner@example.org");
  });

  it("decodeVerpMember refuses what is no address", () => {
    expect(decodeVerpMember("alice")).toBeNull();
    expect(decodeVerpMember("=example.net")).toBeNull();
    expect(decodeVerpMember("alice=")).toBeNull();
  });

  it("finds a list by address in any case, or by a unique name", () => {
    const l = listsOf("dev@example.org", "dev@other.example", "announce@example.org");
    expect(findList(l, "DEV@example.org")?.address).toBe("dev@example.org");
    expect(findList(l, "announce")?.address).toBe("announce@example.org");
    expect(findList(l, "dev")).toBeUndefined(); // two lists are called dev
    expect(findList(l, "nope@example.org")).toBeUndefined();
  });
});
