/**
 * The one decoder of mail's text encodings (src/lists/header-text.ts), as the lists and the bounce
 * reader both use it: RFC 2047 words, raw 8-bit header text, quoted-printable bodies, charsets.
 */
import { describe, expect, it } from "vitest";
import { decodeCharset, decodeHeaderText, decodeQuotedPrintable } from "../../src/lists/header-text.js";

const latin1 = (s: string): string => Buffer.from(s, "utf8").toString("latin1");

describe("decodeHeaderText", () => {
  it("decodes B and Q words and joins a character split across adjacent words, folding included", () => {
    expect(decodeHeaderText("=?UTF-8?B?w6k=?= plain")).toBe("é plain");
    // "é" is C3 A9: split across two words and a folded line
    expect(decodeHeaderText("=?utf-8?Q?caf=C3?=\r\n =?utf-8?Q?=A9_au_lait?=")).toBe("café au lait");
  });

  it("keeps a Q word's trailing underscore as a space", () => {
    expect(decodeHeaderText("=?utf-8?Q?Mail_?= =?utf-8?Q?delivery?=")).toBe("Mail delivery");
  });

  it("ignores an RFC 2231 language suffix and reads an unknown charset as latin1", () => {
    expect(decodeHeaderText("=?utf-8*en?Q?ok?=")).toBe("ok");
    expect(decodeHeaderText("=?x-unknown?Q?caf=E9?=")).toBe("café");
  });

  it("reads raw 8-bit UTF-8 as UTF-8 and leaves malformed words as written", () => {
    expect(decodeHeaderText(latin1("Größe"))).toBe("Größe");
    expect(decodeHeaderText("=?utf-8?Q?unterminated")).toBe("=?utf-8?Q?unterminated");
  });

  it("decodes a subject of thousands of words", () => {
    const value = Array.from({ length: 5000 }, () => "=?utf-8?B?w6k=?=").join(" ");
    expect(decodeHeaderText(value)).toBe("é".repeat(5000));
  });
});

describe("decodeQuotedPrintable and decodeCharset", () => {
  it("undoes soft line breaks and =XX, leaving a stray = as written", () => {
    const bytes = decodeQuotedPrintable("Mailbox unavail=\r\nable: caf=C3=A9 =ZZ");
    expect(decodeCharset(bytes, "utf-8")).toBe("Mailbox unavailable: café =ZZ");
  });

  it("decodes a declared charset, and falls back to latin1 for an unknown one", () => {
    expect(decodeCharset(Buffer.from([0x82, 0xa0]), "shift_jis")).toBe("あ");
    expect(decodeCharset(Buffer.from([0x63, 0xe9]), "no-such-charset")).toBe("cé");
    expect(decodeCharset(Buffer.from("ok"), undefined)).toBe("ok");
  });
});
