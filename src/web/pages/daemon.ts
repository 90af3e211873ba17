/** The daemon page: the master, its workers (state, restarts, stalls), the config in force, a rejected edit. */
import { html, type Html } from "../escape.js";
import type { DaemonView } from "../deps.js";
import type { Settings } from "../access.js";
import { age, grid, page, when, type PageContext } from "./layout.js";

const STATE_CLASS: Record<string, string> = {
  ready: "ok",
  starting: "warn",
  stopping: "warn",
  backoff: "bad",
  stalled: "bad",
  "gave-up": "bad",
  "config-error": "bad",
};

export function daemonPage(ctx: PageContext, view: DaemonView, settings: Settings, now: number): Html {
  const s = view.status;
  const master = !s
    ? html`<p class="bad">No master status: qrunner has not run with this config's state directory.</p>`
    : html`<div class="scroll">
        <table>
          <tr>
            <th>Master</th>
            <td class="${view.running ? "ok" : "bad"}">
              ${view.running ? s.master.state : "not running"} · pid ${s.master.pid} on ${s.master.host}
            </td>
          </tr>
          <tr>
            <th>Up</th>
            <td>
              ${view.running ? age(now - s.master.startedAt) : "–"}${s.master.readyMs !== null ? ` (all workers ready after ${s.master.readyMs} ms)` : ""}
            </td>
          </tr>
          <tr>
            <th>Memory</th>
            <td>${(s.master.rss / 1048576).toFixed(1)} MiB</td>
          </tr>
          <tr>
            <th>Status written</th>
            <td>${when(s.updatedAt, now)}</td>
          </tr>
        </table>
      </div>`;
  const rows = (s && view.running ? s.workers : []).map(
    (w) =>
      html`<tr>
        <td>${w.runner}</td>
        <td>${w.slice}${w.host !== undefined ? html` <span class="muted">${w.host}</span>` : ""}</td>
        <td>${w.pid ?? "–"}</td>
        <td class="${STATE_CLASS[w.state] ?? ""}">${w.state}</td>
        <td class="n">${w.restarts}</td>
        <td class="n">${w.handled}</td>
        <td class="n">${w.failed}</td>
        <td class="n">${w.due}</td>
        <td class="n">${w.inHand}</td>
        <td>
          ${w.sinceProgress === null ? "–" : `${w.sinceProgress}s`}${w.waiting !== null ? html`<br /><span class="muted">${w.waiting}</span>` : ""}
        </td>
        <td>${w.lastError ?? ""}</td>
      </tr>`,
  );
  const workers = html`<h2>Workers</h2>
    ${
      rows.length === 0
        ? html`<p class="muted">No workers running.</p>`
        : grid(
            [
              "Runner",
              "Slice",
              "PID",
              "State",
              "Restarts",
              "Handled",
              "Failed",
              "Due",
              "In hand",
              "Since progress",
              "Last error",
            ],
            rows,
            ["Restarts", "Handled", "Failed", "Due", "In hand"],
          )
    }`;
  const cfg = s?.config;
  const config = html`<h2>Config in force</h2>
    <div class="scroll">
      <table>
        <tr>
          <th>File</th>
          <td>${cfg?.file ?? settings.config.file}</td>
        </tr>
        <tr>
          <th>Version</th>
          <td>${cfg?.version ?? settings.config.version}</td>
        </tr>
        ${
          cfg
            ? html`<tr>
                <th>Loaded</th>
                <td>${when(cfg.loadedAt, now)}</td>
              </tr>`
            : ""
        }
        ${
          s
            ? html`<tr>
                <th>Reloads</th>
                <td>
                  ${s.reload.count}${s.reload.at !== null ? html`, last ${when(s.reload.at, now)} (${s.reload.why ?? "?"}: <span class="${s.reload.ok ? "ok" : "bad"}">${s.reload.ok ? "ok" : "failed"}</span>)` : ""}
                </td>
              </tr>`
            : ""
        }
        <tr>
          <th>Lists</th>
          <td>${settings.lists.size}</td>
        </tr>
      </table>
    </div>`;
  const rejected = s?.rejectedEdit
    ? html`<h2 class="bad">Rejected edit (${when(s.rejectedEdit.at, now)})</h2>
        <p>The master keeps running on the config above; fix the file and it reloads.</p>
        <pre>${s.rejectedEdit.message}</pre>`
    : "";
  return page(ctx, "Daemon", [master, rejected, workers, config]);
}
