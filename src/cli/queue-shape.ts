/** `qrunner queue list --shape`: the qshape-like table of src/queue/shape.ts, fitted to 80 columns. */
import type { QueueShape } from "../queue/shape.js";

/** The domain column is cut to this many characters at least... */
const MIN_DOMAIN = 12;
/** ...and the whole table to this width where the numbers leave room. */
const WIDTH = 80;

export function renderShape(s: QueueShape): string {
  const labels = ["T", ...s.buckets];
  const rows = [s.total, ...s.rows];
  // each number column as wide as its label or its widest count, one space between columns
  const widths = labels.map((l, i) =>
    Math.max(l.length, ...rows.map((r) => String(i === 0 ? r.total : (r.counts[i - 1] ?? 0)).length)),
  );
  const numbers = widths.reduce((n, w) => n + w + 1, 0);
  const longest = Math.max(5, ...rows.map((r) => r.domain.length));
  const dw = Math.max(MIN_DOMAIN, Math.min(longest, WIDTH - numbers));
  const cut = (d: string) => (d.length <= dw ? d : "…" + d.slice(d.length - dw + 1));
  const line = (first: string, cells: string[]) =>
    first.padStart(dw) + cells.map((c, i) => " " + c.padStart(widths[i] ?? 0)).join("");
  const out = [
    `${s.queue}: ${s.unit} by domain (rows) and age in minutes since arrival (columns)`,
    line("", labels),
    ...rows.map((r) => line(cut(r.domain), [String(r.total), ...r.counts.map(String)])),
  ];
  if (s.domains > s.rows.length)
    out.push(`${" ".repeat(dw)} (${s.domains - s.rows.length} more domains; --top to see them)`);
  return out.join("\n") + "\n";
}
