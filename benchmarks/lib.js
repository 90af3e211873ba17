// Shared helpers for the benchmarks: timing, temp dirs, tables, JSON output.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const argv = process.argv.slice(2);
export const JSON_OUT = argv.includes("--json");

export function arg(name, dflt) {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

/** A temp dir on the same disk as the queues would be (default os.tmpdir(); --dir=PATH to choose). */
export function benchDir(prefix) {
  const base = arg("dir", os.tmpdir());
  const dir = mkdtempSync(path.join(base, prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function table(title, headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join("  ");
  process.stderr.write(`\n${title}\n${line(headers)}\n${rows.map(line).join("\n")}\n`);
}

export function emit(name, result) {
  if (JSON_OUT) process.stdout.write(JSON.stringify({ bench: name, ...result }) + "\n");
}

export function fmt(x, digits = 2) {
  return Number(x).toFixed(digits);
}
