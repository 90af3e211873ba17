/** The human form of `qrunner status`: aligned tables, one per section. */
import { formatDuration } from "../util/units.js";
import { alignRow, columnWidths, tableLines } from "./table.js";
import type { MasterStatus, RejectedEdit, WorkerStatus } from "../master/status-file.js";

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
    out.push("", ...tableLines(head, rows));
  }
  if (r.queues.length > 0) {
    const rows = r.queues.map((q) => [q.name, String(q.depth), String(q.inProgress), ago(q.oldest, now)]);
    out.push("", ...tableLines(["QUEUE", "DEPTH", "IN PROGRESS", "OLDEST"], rows));
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
    out.push("", ...tableLines(["SMTP HOST", "STATE", "SINCE", "FAILURES", "LAST ERROR"], rows));
  }
  if (r.rejectedEdit) {
    out.push("", `rejected edit (${ago(r.rejectedEdit.at, now)}); the config above stays in force:`);
    for (const line of r.rejectedEdit.message.split("\n")) out.push(`  ${line}`);
  }
  return out.join("\n") + "\n";
}

export interface WatchOptions {
  now: number;
  /** terminal columns (80 when not a terminal) */
  width: number;
  /** terminal rows; the frame is cut to fit (Infinity: never) */
  height: number;
  intervalMs: number;
  /** block characters and an ellipsis; plain ASCII otherwise */
  unicode: boolean;
}

/**
 * The `status --watch` frame: one line per item, each at most `width` columns (long cells are cut
 * with an ellipsis), at most `height` lines. Queues come first, with depth bars scaled to the
 * deepest queue, then workers and SMTP hosts.
 */
export function renderWatch(r: StatusReport, o: WatchOptions): string[] {
  const ell = o.unicode ? "…" : "~";
  const clip = (s: string, w: number) => (s.length <= w ? s : w <= 0 ? "" : s.slice(0, w - 1) + ell);
  const lines: string[] = [];
  const clock = new Date(o.now).toTimeString().slice(0, 8);
  // right-aligned extras, kept only where they fit beside the left part
  const beside = (left: string, right: string) =>
    left.length + right.length + 2 <= o.width ? left.padEnd(o.width - right.length) + right : left;
  lines.push(beside(`qrunner  ${masterLine(r)}`, `${clock} every ${formatDuration(o.intervalMs)}`));
  const config = r.rejectedEdit
    ? `config   edit REJECTED ${ago(r.rejectedEdit.at, o.now)}: ${r.rejectedEdit.message.split("\n")[0] ?? ""}`
    : r.config
      ? `config   version ${r.config.version.slice(0, 12)}, loaded ${ago(r.config.loadedAt, o.now)}`
      : "";
  lines.push(beside(config, "Ctrl-C quits"));
  lines.push("", ...queueLines(r, o));
  if (r.workers.length > 0) {
    const counts = new Map<string, number>();
    for (const w of r.workers) counts.set(w.state, (counts.get(w.state) ?? 0) + 1);
    const head = ["RUNNER", "SLICE", "HOST", "PID", "STATE", "RST", "HANDLED", "DUE", "PROGRESS", "NOTE"];
    const rows = r.workers.map((w) => [
      w.runner,
      w.slice,
      w.host ?? "-",
      w.pid === null ? "-" : String(w.pid),
      w.state,
      String(w.restarts),
      String(w.handled),
      String(w.due),
      w.sinceProgress === null ? "-" : formatDuration(w.sinceProgress * 1000),
      workerNote(w, o.now),
    ]);
    lines.push("", `workers: ${[...counts].map(([s, n]) => `${n} ${s}`).join(", ")}`);
    // NOTE gives way first, then HOST and SLICE; numbers are right-aligned
    lines.push(...fitTable(head, rows, o.width, ell, [9, 2, 1, 0], [3, 5, 6, 7]));
  }
  if (r.hosts && r.hosts.length > 0) {
    const str = (v: unknown) => (v === null || v === undefined ? "-" : String(v));
    const rows = r.hosts.map((h) => [
      str(h["id"]),
      str(h["state"]),
      typeof h["since"] === "number" ? formatDuration(Math.max(0, o.now - h["since"])) : "-",
      str(h["consecutiveFailures"]),
      str(h["lastError"]),
    ]);
    lines.push(
      "",
      ...fitTable(["SMTP HOST", "STATE", "SINCE", "FAIL", "LAST ERROR"], rows, o.width, ell, [4, 0], [3]),
    );
  }
  const fitted = lines.map((l) => clip(l, o.width));
  if (fitted.length <= o.height) return fitted;
  const keep = Math.max(0, o.height - 1);
  return [
    ...fitted.slice(0, keep),
    clip(`${ell} ${fitted.length - keep} more lines: enlarge the terminal`, o.width),
  ];
}

function masterLine(r: StatusReport): string {
  const m = r.master;
  if (r.running && m && "state" in m)
    return `master ${m.state}, pid ${m.pid} on ${m.host}, up ${formatDuration(m.uptimeSeconds * 1000)}, rss ${mb(m.rss)}`;
  if (r.running && m) return `master running, pid ${m.pid} on ${m.host}`;
  if (r.stale) return `master not running (stale lock left${m ? `, pid ${m.pid} on ${m.host}` : ""})`;
  return "master not running";
}

/** The queue table with a depth bar per queue, scaled so that the deepest queue fills the width. */
function queueLines(r: StatusReport, o: WatchOptions): string[] {
  const rows = r.queues.map((q) => [
    q.name,
    String(q.depth),
    String(q.inProgress),
    // a deferred queue's names carry due times: show when the first falls due instead of a bogus age
    q.oldest === null
      ? "-"
      : q.oldest > o.now
        ? `in ${formatDuration(q.oldest - o.now)}`
        : formatDuration(o.now - q.oldest),
  ]);
  const head = ["QUEUE", "DEPTH", "WIP", "OLDEST"];
  const w = columnWidths(head, rows);
  const cell = (row: readonly string[]) => alignRow(row, w, { rightAligned: [1, 2], padLast: true });
  const used = w.reduce((a, b) => a + b, 0) + 2 * w.length;
  const barWidth = Math.max(0, o.width - used);
  const max = Math.max(0, ...r.queues.map((q) => q.depth));
  // the bar column's header is its scale: 0 at the left, the deepest queue's depth at the right
  const scale =
    max > 0 && barWidth >= String(max).length + 2 ? "  0" + String(max).padStart(barWidth - 1) : "";
  const out = [cell(head) + scale];
  r.queues.forEach((q, i) =>
    out.push(`${cell(rows[i] ?? [])}  ${bar(q.depth, max, barWidth, o.unicode)}`.trimEnd()),
  );
  return out;
}

const EIGHTHS = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

/** A bar of `width` cells for n of max, at least one sliver when n > 0. */
export function bar(n: number, max: number, width: number, unicode: boolean): string {
  if (n <= 0 || max <= 0 || width <= 0) return "";
  const cells = (Math.min(n, max) / max) * width;
  if (!unicode) return "#".repeat(Math.max(1, Math.round(cells)));
  const whole = Math.floor(cells);
  const part = Math.floor((cells - whole) * 8);
  const s = "█".repeat(whole) + (EIGHTHS[part] ?? "");
  return s === "" ? "▏" : s;
}

/**
 * A table cut to `width`: columns as wide as their widest cell; when too wide, the columns in
 * `shrink` give way in that order (down to their header's width), and cells are cut with `ell`.
 */
export function fitTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  width: number,
  ell: string,
  shrink: readonly number[],
  rightAligned: readonly number[] = [],
): string[] {
  const w = columnWidths(head, rows);
  const total = () => w.reduce((a, b) => a + b, 0) + 2 * (w.length - 1);
  for (const i of shrink) {
    const over = total() - width;
    if (over <= 0) break;
    w[i] = Math.max((head[i] ?? "").length, (w[i] ?? 0) - over);
  }
  return tableLines(head, rows, { widths: w, ell, rightAligned });
}
