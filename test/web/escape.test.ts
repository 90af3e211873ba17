/**
 * The console's one escape function, over hand-made markup attacks and the Subject of every hostile
 * fixture (test/fixtures/hostile/, decoded as the incoming runner decodes it for a held post): the
 * output never holds a character that opens a tag or leaves an attribute, and it reads back as the text.
 */
import { describe, expect, it } from "vitest";
import { hostileMessages } from "../fixtures/hostile/generate.js";
import { SUBJECT_SCAN_CHARS } from "../../src/lists/headers.js";
import { decodeHeaderText } from "../../src/lists/header-text.js";
import { getHeader } from "../../src/lists/message.js";
import { escapeHtml, html, Html } from "../../src/web/escape.js";

const ATTACKS = [
  "<script>alert(1)</script>",
  '"><img src=x onerror=alert(1)>',
  "'><svg onload=alert(1)>",
  "</textarea><script>alert(document.cookie)</script>",
  "&lt;script&gt; already escaped once",
  "=?utf-8?q?<b>bold</b>?=",
  "javascript:alert(1)",
  "a\u0000b\u0007c\u001bd\u007fe\tf\ng",
];

/** What a browser shows for escaped text: the five entities read back. */
function unescape(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) =>
    e === "amp" ? "&" : e === "lt" ? "<" : e === "gt" ? ">" : e === "quot" ? '"' : "'",
  );
}

function hostileSubjects(): { name: string; subject: string }[] {
  const out: { name: string; subject: string }[] = [];
  for (const m of hostileMessages()) {
    const raw = getHeader(m.raw, "subject");
    if (raw !== undefined)
      out.push({ name: m.name, subject: decodeHeaderText(raw.slice(0, SUBJECT_SCAN_CHARS)) });
  }
  return out;
}

function expectInert(out: string, input: string): void {
  expect(out).not.toMatch(/[<>"']/);
  // every & starts one of the five entities
  expect(out.replace(/&(amp|lt|gt|quot|#39);/g, "")).not.toContain("&");
  // controls (but tab and newline) become U+FFFD; everything else reads back as it was
  // eslint-disable-next-line no-control-regex
  expect(unescape(out)).toBe(input.replace(/[\x00-\x08\x0b-\x1f\x7f]/gu, "\ufffd"));
}

describe("escapeHtml", () => {
  it.each(ATTACKS)("renders %j as text", (s) => expectInert(escapeHtml(s), s));

  it("renders the Subject of every hostile fixture as text", () => {
    const subjects = hostileSubjects();
    expect(subjects.length).toBeGreaterThan(10);
    for (const { subject } of subjects) expectInert(escapeHtml(subject), subject);
  });

  it("escapes a 1 MB run of '<' whole", () => {
    const big = "<".repeat(1 << 20);
    expect(escapeHtml(big)).toBe("&lt;".repeat(1 << 20));
  });
});

describe("html``", () => {
  it("escapes every interpolation, in text and in attributes", () => {
    const evil = '"><script>x</script>';
    const out = html`<p title="${evil}">${evil}</p>`.text;
    expect(out).toBe(
      '<p title="&quot;&gt;&lt;script&gt;x&lt;/script&gt;">&quot;&gt;&lt;script&gt;x&lt;/script&gt;</p>',
    );
  });

  it("keeps nested html`` fragments, joins arrays and drops null, undefined and false", () => {
    const items = ["<a>", "b"].map((x) => html`<li>${x}</li>`);
    // (prettier formats html`` templates: the blanks around the tags are its)
    const out = html`<ul>
      ${items}${null}${undefined}${false}${0}
    </ul>`.text;
    expect(out.replace(/\s+/g, "")).toBe("<ul><li>&lt;a&gt;</li><li>b</li>0</ul>");
  });

  it("does not trust a plain object posing as Html", () => {
    const fake = { text: "<script>" } as unknown as string;
    expect(html`${fake}`.text).not.toContain("<script>");
    expect(html`${new Html("<b>")}`.text).toBe("<b>");
  });
});
