import { describe, expect, it } from "vitest";
import addressparser from "nodemailer/lib/addressparser/index.js";
import { extractAddresses, MAX_ADDRESS_HEADER } from "../../src/lists/header-addresses.js";

describe("extractAddresses", () => {
  it("reads the forms mail carries, as nodemailer's addressparser did", () => {
    const values = [
      "alice@example.net",
      "Alice <alice@example.net>",
      '"Smith, Alice" <alice@example.net>, bob@example.com',
      "(comment) m0@example.net (another)",
      "m0@example.net\r\n (folded comment)",
      '"Quoted \\"Name\\"" <m1@example.net>',
      "=?utf-8?B?QWxpY2U=?= <alice@example.net>",
      "Alice alice@example.net",
      "team: a@example.net, b@example.net;, c@example.net",
      "undisclosed-recipients:;",
      "a@b@c",
      "<>",
      "no-at-sign",
      "Grüße <m1@example.net>; x@example.org",
    ];
    for (const v of values) {
      const theirs = addressparser(v, { flatten: true })
        .map((a) => a.address.trim())
        .filter((a) => a !== "");
      expect(extractAddresses(v), v).toEqual(theirs);
    }
  });

  it("drops display names, comments and quoted strings, unterminated ones included", () => {
    expect(extractAddresses('"a@evil.example" <b@example.net>')).toEqual(["b@example.net"]);
    expect(extractAddresses('"unterminated <m0@example.net>')).toEqual([]);
    expect(extractAddresses("(unterminated m0@example.net")).toEqual([]);
    expect(extractAddresses("((nested) m0@example.net) m1@example.net")).toEqual(["m1@example.net"]);
    expect(extractAddresses("<@relay.example:m0@example.net>")).toEqual(["m0@example.net"]);
    expect(extractAddresses("<m0@example.net")).toEqual(["m0@example.net"]);
  });

  it("reads a 100,000-address list up to its cap, and hostile values in one pass", () => {
    const list = Array.from({ length: 100_000 }, (_, i) => `u${i}@example.net`).join(", ");
    const got = extractAddresses(list);
    expect(got[0]).toBe("u0@example.net");
    expect(got.length).toBeGreaterThan(3000);
    expect(got.join(", ").length).toBeLessThanOrEqual(MAX_ADDRESS_HEADER);
    // addressparser took 3.5 s on the first of these (its fallback regex restarts at every \b)
    for (const v of ["a.".repeat(32768), "(".repeat(65536), '"'.repeat(65535), "g:".repeat(32768)])
      expect(extractAddresses(v).length).toBe(0);
    expect(extractAddresses("<".repeat(65536)).length).toBe(1); // one unterminated angle-addr: refused later
  });
});
