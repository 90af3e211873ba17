/**
 * The queues page: every queue's depth and oldest entry, the qshape-like age table of outgoing and
 * backoff (src/queue/shape.ts, as `queue list --shape`), the deferred entries with a requeue button,
 * and the shunt with each entry's reason and an unshunt button.
 */
import { HOLD_QUEUE, listQueue, type EntrySummary } from "../../queue/inspect.js";
import type { QueueShape } from "../../queue/shape.js";
import { queueStats } from "../../queue/stats.js";
import { QUEUE_NAMES } from "../../queue/types.js";
import { html, type Html } from "../escape.js";
import type { CachedShape, ShapeCache } from "../shape-cache.js";
import { age, grid, page, postForm, type PageContext } from "./layout.js";

/** Entries listed per queue (shunt, backoff), oldest first. */
export const LIST_MAX = 100;

function shapeTable({ shape: s, cut, at }: CachedShape, max: number, now: number): Html {
  const row = (r: QueueShape["total"], head: boolean) =>
    html`<tr><${head ? "th" : "td"}>${r.domain}</${head ? "th" : "td"}><td class="n">${r.total}</td>${r.counts.map((c) => html`<td class="n">${c === 0 ? "" : c}</td>`)}</tr>`;
  return html`<h2>${s.queue}: recipients by domain and age (minutes)</h2>
    <div class="scroll">
      <table>
        <tr>
          <th>Domain</th>
          <th class="n">T</th>
          ${s.buckets.map((b) => html`<th class="n">${b}</th>`)}
        </tr>
        ${row(s.total, true)}${s.rows.map((r) => row(r, false))}
      </table>
    </div>
    ${s.domains > s.rows.length ? html`<p class="muted">${s.domains - s.rows.length} more domains</p>` : ""}
    <p class="muted">Counted ${age(now - at)} ago${cut ? `, over the oldest ${max} entries only` : ""}.</p>`;
}

/** The columns entryCells fills. */
const ENTRY_HEADS = ["Id", "List", "Sender", "Rcpts", "Age"];

/** A button that posts one entry's id to `action`; "in progress" for an entry a runner holds. */
function entryButton(ctx: PageContext, e: EntrySummary, action: string, label: string): Html | string {
  if (e.state !== "queued") return "in progress";
  return postForm(
    ctx,
    action,
    html`<input type="hidden" name="id" value="${e.id}" /><button type="submit">${label}</button>`,
  );
}

function entryCells(e: EntrySummary, now: number): Html {
  const m = e.meta;
  return html`<td><code>${e.id.slice(0, 12)}</code></td>
    <td>${m?.list ?? ""}</td>
    <td>${m ? m.sender || "<>" : ""}</td>
    <td class="n">${m?.recipients.length ?? ""}</td>
    <td>${age(now - (m?.received ?? e.time))}</td>`;
}

function shuntTable(ctx: PageContext, entries: readonly EntrySummary[], now: number): Html {
  if (entries.length === 0)
    return html`<h2>Shunt</h2>
      <p class="muted">Nothing shunted.</p>`;
  const rows = entries.map(
    (e) =>
      html`<tr>
        ${entryCells(e, now)}
        <td>${e.meta?.shuntedFrom ?? ""}</td>
        <td>${e.meta?.shuntReason ?? e.error ?? ""}</td>
        <td>${entryButton(ctx, e, "/queues/unshunt", "Unshunt")}</td>
      </tr>`,
  );
  return html`<h2>Shunt</h2>
    ${grid([...ENTRY_HEADS, "From queue", "Reason", ""], rows, ["Rcpts"])}`;
}

function deferredTable(ctx: PageContext, entries: readonly EntrySummary[], now: number): Html {
  const later = entries.filter((e) => e.time > now);
  if (later.length === 0)
    return html`<h2>Deferred (backoff)</h2>
      <p class="muted">No deferred entries.</p>`;
  const rows = later.map((e) => {
    const last = e.meta?.failures.at(-1);
    return html`<tr>
      ${entryCells(e, now)}
      <td>in ${age(e.time - now)}</td>
      <td class="n">${e.meta?.attempts ?? ""}</td>
      <td>${last?.message ?? ""}</td>
      <td>${entryButton(ctx, e, "/queues/requeue", "Retry now")}</td>
    </tr>`;
  });
  return html`<h2>Deferred (backoff)</h2>
    ${grid([...ENTRY_HEADS, "Next try", "Attempts", "Last failure", ""], rows, ["Rcpts", "Attempts"])}`;
}

export async function queuesPage(
  ctx: PageContext,
  root: string,
  shapes: ShapeCache,
  now: number,
): Promise<Html> {
  const names = [...QUEUE_NAMES, HOLD_QUEUE];
  const stats = await Promise.all(
    names.map(async (q) => ({ q, s: await queueStats(root, q).catch(() => null) })),
  );
  const depths = grid(
    ["Queue", "Queued", "In progress", "Oldest"],
    stats.map(
      ({ q, s }) =>
        html`<tr>
          <td>${q}</td>
          <td class="n">${s?.depth ?? "?"}</td>
          <td class="n">${s?.inProgress ?? "?"}</td>
          <td>${s?.oldest != null ? age(now - s.oldest) : "–"}</td>
        </tr>`,
    ),
    ["Queued", "In progress"],
  );
  const tables = await Promise.all(["outgoing", "backoff"].map((q) => shapes.get(root, q, now)));
  const [shunt, backoff] = await Promise.all([
    listQueue(root, "shunt", LIST_MAX),
    listQueue(root, "backoff", LIST_MAX),
  ]);
  return page(ctx, "Queues", [
    depths,
    tables.filter((t) => t.shape.total.total > 0).map((t) => shapeTable(t, shapes.maxEntries, now)),
    shuntTable(ctx, shunt, now),
    deferredTable(ctx, backoff, now),
  ]);
}
