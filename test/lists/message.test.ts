import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeHeaderText } from "../../src/lists/header-text.js";
import {
  MAX_HEADER_BYTES,
  checkMessage,
  isPlausibleMessage,
  stripFromLine,
} from "../../src/lists/message-check.js";
import {
  MessageHeader,
  getHeader,
  getHeaders,
  headerFields,
  messageId,
  splitHeader,
} from "../../src/lists/message.js";
import { fixture, fixtures } from "../fixtures/messages/list.js";

const b = (s: string): Buffer => Buffer.from(s, "latin1");

describe("splitHeader", () => {
  it("splits at the first empty line, LF and CRLF, and keeps the bytes", () => {
    for (const { name, raw } of fixtures()) {
      const s = splitHeader(raw);
      expect(s, name).not.toBeNull();
      if (!s) continue;
      const sep = raw.subarray(s.headerEnd, s.bodyStart).toString("latin1");
      expect(sep === "\n" || sep === "\r\n", name).toBe(true);
      expect(
        Buffer.concat([s.header, raw.subarray(s.headerEnd, s.bodyStart), s.body]).equals(raw),
        name,
      ).toBe(true);
      expect(s.eol, name).toBe(raw.toString("latin1").split("\n")[0]?.endsWith("\r") ? "\r\n" : "\n");
    }
  });

  it("reports the EOL style", () => {
    expect(splitHeader(fixture("crlf.eml"))?.eol).toBe("\r\n");
    expect(splitHeader(fixture("plain-lf.eml"))?.eol).toBe("\n");
  });

  it("returns null without a header block, and takes a header-only message", () => {
    expect(splitHeader(b(""))).toBeNull();
    expect(splitHeader(b("\nbody"))).toBeNull();
    expect(splitHeader(b("\r\nbody"))).toBeNull();
    const s = splitHeader(b("Subject: x\nFrom: a@b"));
    expect(s?.header.toString()).toBe("Subject: x\nFrom: a@b");
    expect(s?.body.length).toBe(0);
  });

  it("does not mistake a whitespace-only line for the empty line", () => {
    const s = splitHeader(b("A: 1\n \nB: 2\n\nbody"));
    expect(s?.body.toString()).toBe("body");
  });
});

describe("headerFields / getHeader", () => {
  it("unfolds values and records offsets", () => {
    const raw = fixture("no-subject-folded.eml");
    const s = splitHeader(raw);
    if (!s) throw new Error("no header");
    const fields = headerFields(s.header);
    expect(fields.map((f) => f.name)).toEqual(["From", "To", "Date", "Message-ID", "X-Long-Header"]);
    expect(fields[1]?.value).toBe("dev@example.org,    other@example.com");
    expect(fields[4]?.value).toBe("a b c\td e f");
    for (const f of fields)
      expect(s.header.toString("latin1", f.start, f.start + f.name.length)).toBe(f.name);
    expect(fields.at(-1)?.end).toBe(s.header.length);
  });

  it("is case-insensitive, finds every copy, and never reads the body", () => {
    const raw = b("Received: a\nreceived: b\nSubject: s\n\nSubject: not a header\nX-Body: 1\n");
    expect(getHeaders(raw, "RECEIVED")).toEqual(["a", "b"]);
    expect(getHeader(raw, "subject")).toBe("s");
    expect(getHeader(raw, "x-body")).toBeUndefined();
    const h = MessageHeader.of(raw);
    expect(h.getAll("received")).toEqual(["a", "b"]);
    expect(h.has("X-Body")).toBe(false);
  });

  it("keeps 8-bit bytes as latin1 characters", () => {
    const raw = Buffer.concat([b("Subject: "), Buffer.from("Grüße", "utf8"), b("\n\nx")]);
    const v = getHeader(raw, "subject");
    expect(Buffer.from(v ?? "", "latin1").toString("utf8")).toBe("Grüße");
    expect(decodeHeaderText(v ?? "")).toBe("Grüße");
  });

  it("reads a field of ~900 KB of folded blank lines (linear trim: the old regex took minutes)", () => {
    const blank = " \r\n".repeat(300_000);
    const raw = b(`From: a@example.net\r\nX-Blank:${blank} x \t\r\nX-Empty:${blank}Subject: s\r\n\r\nbody`);
    const h = MessageHeader.of(raw);
    expect(h.get("x-blank")).toBe("x");
    expect(h.get("x-empty")).toBe("");
    expect(h.get("subject")).toBe("s");
    expect(getHeader(raw, "x-blank")).toBe("x");
  });

  it("skips malformed lines without losing the fields around them", () => {
    const fields = headerFields(b("A: 1\nthis is junk\n continuation of junk\nB: 2\n"));
    expect(fields.map((f) => [f.name, f.value])).toEqual([
      ["A", "1"],
      ["B", "2"],
    ]);
  });
});

describe("messageId", () => {
  it("finds folded and plain ids", () => {
    expect(messageId(fixture("no-subject-folded.eml"))).toBe("<folded-id@example.com>");
    expect(messageId(fixture("plain-lf.eml"))).toBe("<20241128132458.GA1234@example.net>");
    expect(messageId(b("Subject: x\n\nMessage-ID: <body@x>\n"))).toBeUndefined();
  });
});

describe("checkMessage / isPlausibleMessage", () => {
  it("accepts every fixture, including NUL and 8-bit bytes in the body", () => {
    for (const { name, raw } of fixtures()) expect(checkMessage(raw), name).toEqual({ ok: true });
  });

  it("rejects what is not a message, with a reason", () => {
    const bad: [Buffer, RegExp][] = [
      [b(""), /empty/],
      [b("\nhello"), /no header/],
      [b("hello world\n\nbody"), /not a header field/],
      [b("From alice@example.net Thu Nov 28 13:25:00 2024\nSubject: x\n\n"), /From_ line/],
      [b(": no name\n\n"), /not a header field/],
      [b("Subject: a\0b\n\nbody"), /NUL/],
      [b(`Subject: ${"x".repeat(5000)}\n\nbody`), /over 4096/],
      [Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0]), /not a header field|NUL/],
    ];
    for (const [raw, re] of bad) {
      const r = checkMessage(raw);
      expect(r.ok, raw.toString("latin1").slice(0, 30)).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(re);
      expect(isPlausibleMessage(raw)).toBe(false);
    }
  });

  it("bounds the header block", () => {
    const line = `X-Filler: ${"y".repeat(1000)}\n`;
    const big = b(line.repeat(Math.ceil(MAX_HEADER_BYTES / line.length) + 1) + "\nbody");
    expect(checkMessage(big)).toEqual({
      ok: false,
      reason: `header block is over ${MAX_HEADER_BYTES} bytes`,
    });
    // a long body is fine: only the header is read
    const longBody = Buffer.concat([b("Subject: x\n\n"), Buffer.alloc(3 * MAX_HEADER_BYTES, 0)]);
    expect(isPlausibleMessage(longBody)).toBe(true);
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const raw = Buffer.from(bytes);
        checkMessage(raw);
        const s = splitHeader(raw);
        if (s) headerFields(s.header);
      }),
    );
  });
});

describe("stripFromLine", () => {
  it("removes an mbox From_ line and returns the sender", () => {
    const r = stripFromLine(b("From alice@example.net Thu Nov 28 13:25:00 2024\nSubject: x\n\nbody"));
    expect(r.sender).toBe("alice@example.net");
    expect(r.raw.toString()).toBe("Subject: x\n\nbody");
    const same = b("From: alice@example.net\n\n");
    expect(stripFromLine(same).raw).toBe(same);
  });
});

describe("decodeHeaderText", () => {
  it("decodes B and Q words, joins adjacent ones, keeps plain text", () => {
    expect(decodeHeaderText(getHeader(fixture("subject-2047-b.eml"), "subject") ?? "")).toBe(
      "Übersetzung für die Dokumentation",
    );
    expect(decodeHeaderText(getHeader(fixture("subject-2047-q.eml"), "subject") ?? "")).toBe(
      "Café meeting — agenda",
    );
    expect(decodeHeaderText("[dev] =?ISO-8859-1?Q?caf=E9?= ok")).toBe("[dev] café ok");
    // a UTF-8 character split across two words
    expect(decodeHeaderText("=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=")).toBe("éé");
    expect(decodeHeaderText("=?UTF-8?B?ww==?=\r\n =?UTF-8?B?qQ==?=".replace(/\r\n/, ""))).toBe("é");
    expect(decodeHeaderText("=?utf-8?q?a?= b =?utf-8?q?c?=")).toBe("a b c");
    expect(decodeHeaderText("=?x-unknown?Q?abc?=")).toBe("abc");
  });
});
