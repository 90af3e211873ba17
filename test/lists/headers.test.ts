import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { simpleParser } from "mailparser";
import {
  HeaderInjectionError,
  decorate,
  encodeWords,
  formatPhrase,
  hasSubjectPrefix,
  listFields,
  listId,
} from "../../src/lists/headers.js";
import { decodeHeaderText } from "../../src/lists/header-text.js";
import { getHeader, getHeaders, splitHeader } from "../../src/lists/message.js";
import type { ListConfig } from "../../src/lists/schema.js";
import { fixture, fixtures, makeList } from "../fixtures/messages/list.js";

const b = (s: string): Buffer => Buffer.from(s, "latin1");
const REPLACED = new Set([
  "list-id",
  "list-help",
  "list-post",
  "list-subscribe",
  "list-unsubscribe",
  "list-unsubscribe-post",
  "list-archive",
  "list-owner",
  "precedence",
]);

interface Unit {
  name: string | null;
  bytes: Buffer;
}

/** An independent reading of a header block: fields with their continuation lines, junk lines as they are. */
function units(header: Buffer): Unit[] {
  const out: Unit[] = [];
  let pos = 0;
  while (pos < header.length) {
    const nl = header.indexOf(0x0a, pos);
    const end = nl === -1 ? header.length : nl + 1;
    const line = header.subarray(pos, end);
    const last = out.at(-1);
    if ((line[0] === 0x20 || line[0] === 0x09) && last) last.bytes = Buffer.concat([last.bytes, line]);
    else {
      const m = /^([!-9;-~]+)[ \t]*:/.exec(line.toString("latin1"));
      out.push({ name: m ? (m[1] ?? "").toLowerCase() : null, bytes: line });
    }
    pos = end;
  }
  return out;
}

/**
 * The decorated message minus the lines decorate added or changed equals the input minus the lines
 * it removed or changed, byte for byte; the separator and body are untouched.
 */
function assertOnlyListLinesChanged(raw: Buffer, out: Buffer, list: ListConfig, label: string): void {
  const inS = splitHeader(raw);
  const outS = splitHeader(out);
  if (!inS || !outS) throw new Error(`${label}: no header`);
  expect(out.subarray(outS.headerEnd).equals(raw.subarray(inS.headerEnd)), `${label}: body`).toBe(true);
  const added = listFields(list).map(([n]) => n.toLowerCase());
  const inUnits = units(inS.header);
  const hasSubject = inUnits.some((u) => u.name === "subject");
  if (!hasSubject && list.subject_prefix?.trim()) added.push("subject");
  const outUnits = units(outS.header);
  expect(
    outUnits.slice(0, added.length).map((u) => u.name),
    `${label}: added fields`,
  ).toEqual(added);
  for (const u of outUnits.slice(0, added.length))
    expect(u.bytes.toString("latin1").endsWith(inS.eol)).toBe(true);

  const self = list.address.toLowerCase();
  const kept = inUnits.filter(
    (u) =>
      !(u.name !== null && REPLACED.has(u.name)) &&
      !(u.name === "x-beenthere" && u.bytes.toString("latin1").split(":")[1]?.trim().toLowerCase() === self),
  );
  const rest = outUnits.slice(added.length);
  expect(rest.length, `${label}: kept fields`).toBe(kept.length);
  let subjectSeen = false;
  kept.forEach((u, i) => {
    const o = rest[i] as Unit;
    if (u.name === "subject" && !subjectSeen) {
      subjectSeen = true;
      const orig = u.bytes.toString("latin1").replace(/^Subject:[ \t]*/i, "");
      if (decodeHeaderText(orig.replace(/\r?\n/g, "")).trim() !== "") {
        expect(o.bytes.toString("latin1").endsWith(orig), `${label}: subject keeps its bytes`).toBe(true);
      }
      return;
    }
    expect(o.bytes.equals(u.bytes), `${label}: field ${i} (${u.name})`).toBe(true);
  });
}

describe("decorate", () => {
  const list = makeList({ description: "Developers" });

  it("changes nothing but the list lines, on every fixture", () => {
    for (const { name, raw } of fixtures()) {
      const out = decorate(raw, list);
      assertOnlyListLinesChanged(raw, out, list, name);
    }
  });

  it("writes the RFC 2369/2919 fields in the message's own line endings", () => {
    const out = decorate(fixture("crlf.eml"), list, { archiveUrl: "https://lists.example.org/dev/" });
    const text = out.toString("latin1");
    const top = text.slice(0, text.indexOf("Received:"));
    expect(top).toBe(
      [
        "List-Id: Developers <dev.example.org>",
        "List-Post: <mailto:dev@example.org>",
        "List-Help: <mailto:dev-request@example.org?subject=help>",
        "List-Subscribe: <mailto:dev-join@example.org>",
        "List-Unsubscribe: <mailto:dev-leave@example.org>",
        "List-Archive: <https://lists.example.org/dev/>",
        "List-Owner: <mailto:dev-owner@example.org>",
        "X-BeenThere: dev@example.org",
        "Precedence: list",
        "",
      ].join("\r\n"),
    );
    expect(getHeader(out, "subject")).toBe("[dev] Build farm is down");
    expect(text.replace(/\r\n/g, "")).not.toContain("\n");
  });

  it("uses the list's archive_url when no archiveUrl is given", () => {
    const out = decorate(fixture("plain-lf.eml"), makeList({ archive_url: "https://a.example/dev" }));
    expect(getHeader(out, "list-archive")).toBe("<https://a.example/dev>");
    expect(getHeader(decorate(fixture("plain-lf.eml"), makeList()), "list-archive")).toBeUndefined();
  });

  it("replaces an upstream list's List-* and Precedence, keeps its X-BeenThere", () => {
    const out = decorate(fixture("re-prefixed.eml"), list);
    expect(getHeaders(out, "list-id")).toEqual(["Developers <dev.example.org>"]);
    expect(getHeaders(out, "list-unsubscribe")).toEqual(["<mailto:dev-leave@example.org>"]);
    expect(getHeaders(out, "list-unsubscribe-post")).toEqual([]);
    expect(getHeaders(out, "precedence")).toEqual(["list"]);
    expect(getHeaders(out, "x-beenthere")).toEqual(["dev@example.org", "announce@example.com"]);
  });

  it("is idempotent", () => {
    for (const { name, raw } of fixtures()) {
      const once = decorate(raw, list);
      expect(decorate(once, list).equals(once), name).toBe(true);
    }
  });

  it("formats the List-Id phrase", () => {
    const id = (description?: string): string | undefined =>
      getHeader(decorate(fixture("plain-lf.eml"), makeList(description ? { description } : {})), "list-id");
    expect(id()).toBe("<dev.example.org>");
    expect(id("Dev, QA and friends")).toBe('"Dev, QA and friends" <dev.example.org>');
    expect(decodeHeaderText(id("Développeurs") ?? "")).toBe("Développeurs <dev.example.org>");
    expect(listId(makeList({ address: "Dev.Team@Example.ORG" }))).toBe("dev.team.example.org");
  });

  it("refuses header injection through the archive URL or description", () => {
    expect(() =>
      decorate(fixture("plain-lf.eml"), list, { archiveUrl: "https://x/\r\nBcc: evil@example.com" }),
    ).toThrow(HeaderInjectionError);
    expect(() => decorate(fixture("plain-lf.eml"), list, { archiveUrl: "https://x/a b" })).toThrow(
      HeaderInjectionError,
    );
    expect(() => decorate(fixture("plain-lf.eml"), { ...list, description: "a\0b" })).toThrow(
      HeaderInjectionError,
    );
    expect(() => decorate(fixture("plain-lf.eml"), { ...list, subject_prefix: "[a\0b] " })).toThrow(
      HeaderInjectionError,
    );
  });

  it("keeps byte-exactness on generated messages", () => {
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/);
    const value = fc.stringMatching(/^[ -~]{0,40}$/);
    const field = fc.oneof(
      fc.tuple(name, value, fc.array(value, { maxLength: 2 })),
      fc.tuple(
        fc.constantFrom("Subject", "List-Id", "Precedence", "X-BeenThere", "List-Post"),
        value,
        fc.constant([]),
      ),
    );
    fc.assert(
      fc.property(
        fc.array(field, { minLength: 1, maxLength: 12 }),
        fc.constantFrom("\n", "\r\n"),
        fc.uint8Array({ maxLength: 200 }),
        fc.boolean(),
        (fields, eol, body, prefixed) => {
          const l = prefixed ? list : makeList({ subject_prefix: undefined });
          const header = fields
            .map(([n, v, cont]) => `${n}: ${v}${eol}` + cont.map((c) => ` ${c}${eol}`).join(""))
            .join("");
          const raw = Buffer.concat([b(header + eol), Buffer.from(body)]);
          assertOnlyListLinesChanged(raw, decorate(raw, l), l, "generated");
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("subject prefix", () => {
  const list = makeList();
  const subjectOf = (subject: string | null, l: ListConfig = list): string | undefined => {
    const raw = b(`From: alice@example.net\n${subject === null ? "" : `Subject: ${subject}\n`}\nbody\n`);
    return getHeader(decorate(raw, l), "subject");
  };

  it("is added once", () => {
    expect(subjectOf("Hello")).toBe("[dev] Hello");
    expect(subjectOf("[dev] Hello")).toBe("[dev] Hello");
    expect(subjectOf("Re: [dev] Hello")).toBe("Re: [dev] Hello");
    expect(subjectOf("RE: [DEV] Hello")).toBe("RE: [DEV] Hello");
    expect(subjectOf("Fwd: Re: [dev]   Hello")).toBe("Fwd: Re: [dev]   Hello");
    expect(subjectOf("AW: [dev] Hallo")).toBe("AW: [dev] Hallo");
    expect(subjectOf("Re: Hello")).toBe("[dev] Re: Hello");
  });

  it("sees the prefix inside an encoded-word", () => {
    const enc = "=?UTF-8?Q?Re:_=5Bdev=5D_Caf=C3=A9?=";
    expect(subjectOf(enc)).toBe(enc);
    const b64 = `=?UTF-8?B?${Buffer.from("[dev] Grüße").toString("base64")}?=`;
    expect(subjectOf(b64)).toBe(b64);
  });

  it("goes before encoded-words as plain ASCII, and reads right", async () => {
    for (const name of ["subject-2047-b.eml", "subject-2047-q.eml"]) {
      const raw = fixture(name);
      const out = decorate(raw, list);
      const before = decodeHeaderText(getHeader(raw, "subject") ?? "");
      expect(getHeader(out, "subject")?.startsWith("[dev] =?UTF-8?")).toBe(true);
      expect(decodeHeaderText(getHeader(out, "subject") ?? "")).toBe(`[dev] ${before}`);
      expect((await simpleParser(out)).subject).toBe(`[dev] ${before}`);
    }
  });

  it("is its own encoded-word when not ASCII, also before other encoded-words", async () => {
    const cafe = makeList({ subject_prefix: "[café] " });
    expect(decodeHeaderText(subjectOf("Hello", cafe) ?? "")).toBe("[café] Hello");
    const out = decorate(fixture("subject-2047-b.eml"), cafe);
    expect((await simpleParser(out)).subject).toBe("[café] Übersetzung für die Dokumentation");
    expect(subjectOf("Re: [café] Hello", cafe)).toBe("Re: [café] Hello");
    expect(subjectOf(`=?UTF-8?Q?=5Bcaf=C3=A9=5D_x?=`, cafe)).toBe("=?UTF-8?Q?=5Bcaf=C3=A9=5D_x?=");
    const missing = subjectOf(null, cafe);
    expect(missing?.includes("=?UTF-8?B?")).toBe(true);
    expect(decodeHeaderText(missing ?? "")).toBe("[café] (no subject)");
  });

  it("fills in a missing or empty Subject", () => {
    expect(subjectOf(null)).toBe("[dev] (no subject)");
    expect(subjectOf("")).toBe("[dev] (no subject)");
    expect(subjectOf("   ")).toBe("[dev] (no subject)");
  });

  it("leaves the Subject alone when the list has no prefix", () => {
    const plain = makeList({ subject_prefix: undefined });
    expect(subjectOf("Hello", plain)).toBe("Hello");
    expect(subjectOf(null, plain)).toBeUndefined();
    expect(subjectOf("Hello", makeList({ subject_prefix: "  " }))).toBe("Hello");
  });

  it("keeps a folded Subject's continuation lines", () => {
    const raw = b("Subject:\n  folded start\n  and more\nFrom: a@b.c\n\nbody");
    const out = decorate(raw, list).toString("latin1");
    expect(out).toContain("Subject: [dev]\n  folded start\n  and more\n");
    expect(getHeader(Buffer.from(out, "latin1"), "subject")).toBe("[dev]  folded start  and more");
  });

  it("folds after the prefix rather than pass 998 characters", () => {
    const long = "x".repeat(990);
    const out = decorate(b(`Subject: ${long}\r\n\r\nbody`), list).toString("latin1");
    for (const line of out.split("\r\n")) expect(line.length).toBeLessThanOrEqual(998);
    expect(out).toContain(`Subject: [dev]\r\n ${long}\r\n`);
  });

  it("hasSubjectPrefix compares whitespace- and case-insensitively", () => {
    expect(hasSubjectPrefix("Re:  [DEV]   x", "[dev] ")).toBe(true);
    expect(hasSubjectPrefix("[devel] x", "[dev] ")).toBe(false);
  });
});

describe("encoding helpers", () => {
  it("encodeWords keeps words within 75 characters and whole characters", () => {
    const text = "Ünïcödé ".repeat(20);
    const enc = encodeWords(text);
    for (const w of enc.split(" ")) expect(w.length).toBeLessThanOrEqual(75);
    expect(decodeHeaderText(enc)).toBe(text);
  });

  it("formatPhrase quotes specials", () => {
    expect(formatPhrase("x", "Plain Name")).toBe("Plain Name");
    expect(formatPhrase("x", 'A "quoted" \\ name, here')).toBe('"A \\"quoted\\" \\\\ name, here"');
    expect(() => formatPhrase("x", "a\nb")).toThrow(HeaderInjectionError);
  });
});
