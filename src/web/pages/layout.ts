/** The page shell: head (viewport for phones, the style sheet and script), navigation, main. */
import { html, type Html, type HtmlValue } from "../escape.js";
import type { Principal } from "../access.js";

export interface PageContext {
  principal: Principal | null;
  csrf: string;
  /** the path of the page, for the current navigation item */
  path: string;
  /** a one-line message after an action (from the query string) */
  flash?: { text: string; error: boolean } | undefined;
}

const NAV: readonly { path: string; label: string; operatorOnly: boolean }[] = [
  { path: "/", label: "Daemon", operatorOnly: true },
  { path: "/queues", label: "Queues", operatorOnly: true },
  { path: "/hosts", label: "SMTP hosts", operatorOnly: true },
  { path: "/held", label: "Held posts", operatorOnly: false },
];

function who(p: Principal): string {
  return p.kind === "operator" ? `operator ${p.name}` : `moderator ${p.address}`;
}

export function page(ctx: PageContext, title: string, body: HtmlValue): Html {
  const p = ctx.principal;
  const nav = p
    ? NAV.filter((n) => p.kind === "operator" || !n.operatorOnly).map(
        (n) =>
          html`<a href="${n.path}" ${ctx.path === n.path ? html` aria-current="page"` : ""}>${n.label}</a>`,
      )
    : [];
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>${title} · qrunner</title>
        <link rel="stylesheet" href="/console.css" />
        ${p ? html`<script src="/console.js" defer></script>` : ""}
      </head>
      <body>
        <header>
          <b>qrunner</b>${nav}${
            p
              ? html`<form method="post" action="/logout">
                  <input type="hidden" name="csrf" value="${ctx.csrf}" /><span class="who">${who(p)}</span>
                  <button type="submit">Log out</button>
                </form>`
              : ""
          }
        </header>
        <main>
          ${ctx.flash ? html`<div class="flash${ctx.flash.error ? " err" : ""}" role="status">${ctx.flash.text}</div>` : ""}
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html> `;
}

/** A hidden CSRF field and a POST form around `inner`. */
export function postForm(
  ctx: PageContext,
  action: string,
  inner: HtmlValue,
  attrs: Html | string = "",
): Html {
  return html`<form method="post" action="${action}" ${attrs}>
    <input type="hidden" name="csrf" value="${ctx.csrf}" />${inner}
  </form>`;
}

/** "3m", "2h 5m", "4d 1h": an age for a table cell. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function when(ms: number | null | undefined, now: number): string {
  return ms === null || ms === undefined ? "–" : `${age(now - ms)} ago`;
}

/** A table that scrolls sideways on a narrow screen; the `numeric` headings' columns align right. */
export function grid(heads: readonly string[], rows: HtmlValue, numeric: readonly string[] = []): Html {
  const th = heads.map((h) => (numeric.includes(h) ? html`<th class="n">${h}</th>` : html`<th>${h}</th>`));
  return html`<div class="scroll">
    <table>
      <tr>
        ${th}
      </tr>
      ${rows}
    </table>
  </div>`;
}
