/**
 * Held posts, per list the viewer may moderate, with approve / reject (a reason for the poster) /
 * discard. Everything shown here (subject, From, sender, reason) is the poster's text: escaped by `html`.
 */
import { HeldStore } from "../../lists/held.js";
import type { HeldMeta } from "../../lists/held-format.js";
import type { ListConfig } from "../../lists/schema.js";
import { html, type Html } from "../escape.js";
import { age, page, postForm, type PageContext } from "./layout.js";

/** Posts shown per list (the oldest first); the rest wait for these to be handled. */
export const HELD_SHOWN = 200;

function postCard(ctx: PageContext, p: HeldMeta, now: number): Html {
  const hidden = html`<input type="hidden" name="list" value="${p.list}" /><input
      type="hidden"
      name="id"
      value="${p.id}"
    />`;
  return html`<div class="card post" data-held-id="${p.id}">
    <div class="subject">${p.subject ?? "(no subject)"}</div>
    <div class="meta">
      From ${p.from ?? "(none)"} · sender ${p.sender || "<>"} · ${p.size} bytes · held ${age(now - p.heldAt)}
      ago · id ${p.id}
    </div>
    <div class="meta">Held because: ${p.reason}</div>
    <div class="actions">
      ${postForm(ctx, "/held/approve", html`${hidden}<button type="submit" class="go">Approve</button>`)}
      ${postForm(ctx, "/held/reject", html`${hidden}<input type="text" name="reason" maxlength="300" placeholder="reason for the poster" aria-label="reason" /><button type="submit" class="stop">Reject</button>`)}
      ${postForm(ctx, "/held/discard", html`${hidden}<button type="submit">Discard</button>`)}
    </div>
  </div>`;
}

export async function heldPage(
  ctx: PageContext,
  stateDir: string,
  lists: readonly ListConfig[],
  now: number,
): Promise<Html> {
  if (lists.length === 0) return page(ctx, "Held posts", html`<p class="muted">You moderate no list.</p>`);
  const sections = await Promise.all(
    lists.map(async (l) => {
      const posts = await new HeldStore(stateDir, l.address).list(now);
      return html`<h2 id="list-${l.address}">
          ${l.address} <span class="muted">(${posts.length} held)</span>
        </h2>
        ${posts.length === 0 ? html`<p class="muted">Nothing held.</p>` : posts.slice(0, HELD_SHOWN).map((p) => postCard(ctx, p, now))}
        ${posts.length > HELD_SHOWN ? html`<p class="muted">${posts.length - HELD_SHOWN} more not shown.</p>` : ""}`;
    }),
  );
  return page(ctx, "Held posts", sections);
}
