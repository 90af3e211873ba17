/** The SMTP hosts page: each configured host's health record (src/delivery/health-record.ts). */
import type { Config } from "../../config/schema.js";
import { readHostHealth } from "../../delivery/health-record.js";
import { hostId } from "../../delivery/hosts.js";
import { html, type Html } from "../escape.js";
import { age, grid, page, when, type PageContext } from "./layout.js";

export async function hostsPage(ctx: PageContext, config: Config, now: number): Promise<Html> {
  const configured = [...config.smtp.hosts, ...config.smtp.fallback].map((h) => hostId(h));
  const fallback = new Set(config.smtp.fallback.map((h) => hostId(h)));
  const records = await readHostHealth(config.state, configured);
  const rows = records.map(
    (r) =>
      html`<tr>
        <td>${r.id}${fallback.has(r.id) ? html` <span class="muted">(fallback)</span>` : ""}</td>
        <td class="${r.state === "up" ? "ok" : "bad"}">${r.state}</td>
        <td>${age(now - r.since)}</td>
        <td class="n">${r.consecutiveFailures}</td>
        <td>${when(r.lastSuccess, now)}</td>
        <td>
          ${r.lastError !== null ? html`${r.lastErrorKind ?? ""} ${when(r.lastErrorAt, now)}: ${r.lastError}` : ""}
        </td>
        <td>${r.nextProbe !== null ? (r.nextProbe > now ? `in ${age(r.nextProbe - now)}` : "due") : "–"}</td>
      </tr>`,
  );
  return page(
    ctx,
    "SMTP hosts",
    html`${grid(["Host", "State", "For", "Failures", "Last success", "Last error", "Next probe"], rows, [
        "Failures",
      ])}
      <p class="muted">A host with no deliveries yet shows as up since it was first recorded.</p>`,
  );
}
