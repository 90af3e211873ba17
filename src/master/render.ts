/** The human form of `qrunner status`: aligned tables, one per section. */
import { formatDuration } from "../util/units.js";
import type { MasterStatus, RejectedEdit, WorkerStatus } from "./status-file.js";

export interface StatusReport {
  running: boolean;
  /** a lock or pid file is left by a master that is gone */
  stale: boolean;
  stateDir: string;
  qfiles: string;
  master: (MasterStatus["master"] & { uptimeSeconds: number }) | { pid: number; host: string } | null;
  config: MasterStatus["config"] | null;
  reload: MasterStatus["reload"] | null;
  rejectedEdit: RejectedEdit | null;
  workers: WorkerStatus[];
  queues: Array<{ name: string; depth: number; inProgress: number; oldest: number | null }>;
  /** host health records as the delivery layer keeps them; null when unavailable */
  hosts: Array<Record<string, unknown>> | null;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function ago(ms: number | null, now: number): string {
  return ms === null ? "-" : `${formatDuration(Math.max(0, now - ms))} ago`;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)}MB`;
}

function workerNote(w: WorkerStatus, now: number): string {
  if (w.state === "backoff" && w.nextStartAt !== null)
    return `restart in ${formatDuration(Math.max(0, w.nextStartAt - now))}${w.lastError ? `; ${w.lastError}` : ""}`;
  if (w.waiting) return `waiting: ${w.waiting}`;
  return w.lastError ?? "";
}

export function renderStatus(r: StatusReport, now = Date.now()): string {
  const out: string[] = [];
  const m = r.master;
  if (r.running && m && "state" in m) {
    const ready =
      m.readyMs === null ? "workers starting" : `all workers ready in ${formatDuration(m.readyMs)}`;
    out.push(
      `master   ${m.state}, pid ${m.pid} on ${m.host}, up ${formatDuration(m.uptimeSeconds * 1000)}, ${ready}, rss ${mb(m.rss)}`,
    );
  } else if (r.running && m) {
    out.push(`master   running, pid ${m.pid} on ${m.host} (no status written yet)`);
  } else if (r.stale) {
    out.push(
      `master   not running; a stale lock or pid file is left in ${r.stateDir}${m ? ` (pid ${m.pid} on ${m.host})` : ""}`,
    );
  } else {
    out.push(`master   not running (state ${r.stateDir})`);
  }
  if (r.config) {
    const n = r.reload?.count ?? 0;
    const reloads =
      n > 0 ? `; ${n} reread${n === 1 ? "" : "s"}, last ${r.reload?.ok ? "accepted" : "rejected"}` : "";
    out.push(
      `config   ${r.config.file} (version ${r.config.version.slice(0, 12)}, loaded ${ago(r.config.loadedAt, now)})${reloads}`,
    );
  }
  if (r.workers.length > 0) {
    const head = [
      "RUNNER",
      "SLICE",
      "HOST",
      "PID",
      "STATE",
      "RESTARTS",
      "HANDLED",
      "FAILED",
      "DUE",
      "PROGRESS",
      "NOTE",
    ];
    const rows = r.workers.map((w) => [
      w.runner,
      w.slice,
      w.host ?? "-",
      w.pid === null ? "-" : String(w.pid),
      w.state,
      String(w.restarts),
      String(w.handled),
      String(w.failed),
      String(w.due),
      w.sinceProgress === null ? "-" : `${formatDuration(w.sinceProgress * 1000)} ago`,
      workerNote(w, now),
    ]);
    out.push("", table([head, ...rows]));
  }
  if (r.queues.length > 0) {
    const rows = r.queues.map((q) => [q.name, String(q.depth), String(q.inProgress), ago(q.oldest, now)]);
    out.push("", table([["QUEUE", "DEPTH", "IN PROGRESS", "OLDEST"], ...rows]));
  }
  if (r.hosts && r.hosts.length > 0) {
    const str = (v: unknown) => (v === null || v === undefined ? "-" : String(v));
    const num = (v: unknown) => (typeof v === "number" ? v : null);
    const rows = r.hosts.map((h) => [
      str(h["id"]),
      str(h["state"]),
      ago(num(h["since"]), now),
      str(h["consecutiveFailures"]),
      str(h["lastError"]),
    ]);
    out.push("", table([["SMTP HOST", "STATE", "SINCE", "FAILURES", "LAST ERROR"], ...rows]));
  }
  if (r.rejectedEdit) {
    out.push("", `rejected edit (${ago(r.rejectedEdit.at, now)}); the config above stays in force:`);
    for (const line of r.rejectedEdit.message.split("\n")) out.push(`  ${line}`);
  }
  return out.join("\n") + "\n";
}
