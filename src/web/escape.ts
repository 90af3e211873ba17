/**
 * The one HTML escape of the web console. Every value that reaches a page goes through `html`, a
 * tagged template that escapes each interpolated value unless it is already `Html` (made by `html`
 * itself): a subject, a sender or an SMTP reply can never open a tag or leave an attribute.
 */

/** A fragment of trusted markup: only `html` and `joinHtml` make one. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Text as HTML text or a quoted attribute value: `& < > " '` become entities; every C0 control except
 * tab and newline, and DEL, become U+FFFD (a browser would show or drop them unpredictably).
 */
export function escapeHtml(value: string): string {
  // one character class, no quantifier: a single linear pass
  // eslint-disable-next-line no-control-regex
  return value.replace(/[&<>"'\x00-\x08\x0b-\x1f\x7f]/g, (ch) => ENTITIES[ch] ?? "\ufffd");
}

export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(v: HtmlValue): string {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return (v as readonly HtmlValue[]).map(render).join("");
  return escapeHtml(String(v as string | number | boolean));
}

/** Markup with every interpolation escaped (arrays are joined; null, undefined and false are nothing). */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? "";
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? "");
  return new Html(out);
}
