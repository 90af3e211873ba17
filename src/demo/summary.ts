/** The demo's closing report: deliveries per host against the weights, backoff and fallback use, losses. */
import { formatDuration } from "../util/units.js";
import { fmt } from "./progress.js";

export interface SummaryHost {
  name: string;
  /** undefined for the fallback */
  weight: number | undefined;
  transactions: number;
  recipients: number;
  /** of those, delivered by the backoff runner */
  viaBackoff: number;
  /** outgoing entries of this host's slice (its weighted share of the hash space) */
  sliceEntries: number;
}

export interface Outage {
  host: string;
  downAt: number;
  upAt: number | null;
}

export interface SummaryInput {
  dir: string;
  logFile: string;
  list: string;
  posts: number;
  viaInject: number;
  members: number;
  elapsedMs: number;
  hosts: SummaryHost[];
  outages: Outage[];
  cannotReach: ReadonlyMap<string, number>;
  reachableAgain: ReadonlyMap<string, number>;
  backoffEntries: number;
  expected: number;
  delivered: number;
  duplicates: number;
  other: number;
  /** (post, member) pairs still in a queue when the demo stopped */
  pending: number;
  /** pairs in entries shunted by a failing runner */
  shunted: number;
  /** pairs neither delivered nor in any queue */
  lost: number;
  errors: number;
  lastError: string;
  masterExit: string;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  return rows.map((r) =>
    r
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}

const pct = (a: number, b: number): string => (b === 0 ? "-" : `${((100 * a) / b).toFixed(1)}%`);

export function summaryLines(s: SummaryInput): string[] {
  const primaries = s.hosts.filter((h) => h.weight !== undefined);
  const totalWeight = primaries.reduce((a, h) => a + (h.weight ?? 0), 0);
  const totalRcpt = s.hosts.reduce((a, h) => a + h.recipients, 0);
  const totalSlice = primaries.reduce((a, h) => a + h.sliceEntries, 0);
  const rows = [
    [
      "HOST",
      "WEIGHT",
      "WEIGHT SHARE",
      "SLICE ENTRIES",
      "SLICE SHARE",
      "TRANSACTIONS",
      "RECIPIENTS",
      "SHARE",
      "VIA BACKOFF",
    ],
    ...s.hosts.map((h) => [
      h.name,
      h.weight === undefined ? "fallback" : String(h.weight),
      h.weight === undefined ? "-" : pct(h.weight, totalWeight),
      h.weight === undefined ? "-" : fmt(h.sliceEntries),
      h.weight === undefined ? "-" : pct(h.sliceEntries, totalSlice),
      fmt(h.transactions),
      fmt(h.recipients),
      pct(h.recipients, totalRcpt),
      fmt(h.viaBackoff),
    ]),
  ];
  const fallback = s.hosts.filter((h) => h.weight === undefined);
  const fallbackUse = fallback.reduce((a, h) => a + h.transactions, 0);
  const outages = s.outages.map((o) => {
    const span =
      o.upAt === null
        ? `down from ${formatDuration(o.downAt, "seconds")} to the end`
        : `down ${formatDuration(o.downAt, "seconds")} .. ${formatDuration(o.upAt, "seconds")} (${formatDuration(o.upAt - o.downAt, "seconds")})`;
    return `${o.host} ${span}; qrunner logged "cannot reach host" ${s.cannotReach.get(o.host) ?? 0}x, "reachable again" ${s.reachableAgain.get(o.host) ?? 0}x`;
  });
  const ok = s.lost === 0 && s.pending === 0 && s.shunted === 0;
  const result =
    s.lost > 0
      ? `FAILED: ${fmt(s.lost)} deliveries lost`
      : !ok
        ? `INCOMPLETE: nothing lost, but ${fmt(s.pending)} still queued and ${fmt(s.shunted)} shunted when the demo stopped`
        : "OK: every post reached every member, nothing lost";
  return [
    "",
    "qrunner demo: summary",
    `  site         ${s.dir}  (log: ${s.logFile})`,
    `  posts        ${fmt(s.posts)} to ${s.list} (${fmt(s.viaInject)} through \`qrunner inject\`, ${fmt(s.posts - s.viaInject)} by Switchboard.enqueue into incoming), ${fmt(s.members)} members`,
    `  elapsed      ${formatDuration(s.elapsedMs, "seconds")}`,
    "",
    ...table(rows).map((l) => `  ${l}`),
    "",
    ...outages.map((o) => `  outage       ${o}`),
    `  backoff      ${fmt(s.backoffEntries)} entries went through backoff`,
    `  fallback     ${fmt(fallbackUse)} transactions (it is used only while every primary is down)`,
    `  delivered    ${fmt(s.delivered)} of ${fmt(s.expected)} (post, member) pairs${s.other ? `; ${fmt(s.other)} other deliveries` : ""}`,
    `  duplicates   ${fmt(s.duplicates)}`,
    `  lost         ${fmt(s.lost)}`,
    ...(s.pending || s.shunted
      ? [`  unfinished   ${fmt(s.pending)} still queued, ${fmt(s.shunted)} shunted`]
      : []),
    ...(s.errors ? [`  log errors   ${s.errors} (last: ${s.lastError})`] : []),
    `  master       ${s.masterExit}`,
    `  result       ${result}`,
    "",
  ];
}
