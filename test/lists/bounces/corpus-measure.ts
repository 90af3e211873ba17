/**
 * Scores the bounce detector against a collection of real bounces and the answers a mature parser
 * gives for them (../shared/bounces: expected.json maps each file to its recipients, reason, soft or
 * hard, and `also`, other names of the same recipient; either name counts).
 *
 * - A bounce entry (any reason but feedback, vacation, delivered) is found when the scan lists the
 *   address (or one of its `also` names) as permanent or temporary; recall is found / expected.
 * - Every address the scan lists that is no expected bounce recipient of that file is a false positive;
 *   precision is true / reported.
 * - Hard/soft agreement: over found entries, `permanent` must match a hard bounce, `temporary` a soft one.
 * - Reason agreement: our reason equals the reference's; our "delayed" (a delay report) counts as
 *   Sisimai's "expired", its name for the same report.
 * - Complaints (reason feedback) are scored apart: the scan must say notBounce "complaint".
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { scanBounce, type BounceScan } from "../../../src/lists/bounces/detect.js";

export interface ExpectedEntry {
  address: string;
  reason: string;
  soft: boolean;
  also?: string[];
}

export interface FamilyScore {
  expected: number;
  found: number;
  reported: number;
  correct: number;
  /** reported in files where the reference names at least one recipient (it is silent on some real bounces) */
  reportedAnswered: number;
  kindAgree: number;
  reasonAgree: number;
  misses: string[];
  falsePositives: string[];
  kindMismatches: string[];
}

export interface CorpusScore {
  families: Map<string, FamilyScore>;
  total: FamilyScore;
  complaints: { expected: number; found: number; misses: string[] };
  notBounces: { expected: number; found: number; misses: string[] };
  slowest: { file: string; ms: number };
  messages: number;
  seconds: number;
}

const NOT_BOUNCE_REASONS = new Set(["feedback", "vacation", "delivered"]);

/** The family of a file name: "lhost-postfix-07.eml" -> "lhost-postfix". */
export function familyOf(file: string): string {
  return file.replace(/-\d+\.eml$/, "");
}

function empty(): FamilyScore {
  return {
    expected: 0,
    found: 0,
    reported: 0,
    correct: 0,
    reportedAnswered: 0,
    kindAgree: 0,
    reasonAgree: 0,
    misses: [],
    falsePositives: [],
    kindMismatches: [],
  };
}

export async function scoreCorpus(dir: string, expectedFile: string): Promise<CorpusScore> {
  const expected = JSON.parse(readFileSync(expectedFile, "utf8")) as Record<string, ExpectedEntry[]>;
  const families = new Map<string, FamilyScore>();
  const total = empty();
  const complaints = { expected: 0, found: 0, misses: [] as string[] };
  const notBounces = { expected: 0, found: 0, misses: [] as string[] };
  const slowest = { file: "", ms: 0 };
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".eml"))
    .sort();
  const t0 = performance.now();
  for (const file of files) {
    const raw = readFileSync(path.join(dir, file));
    const s0 = performance.now();
    const scan: BounceScan = await scanBounce(raw);
    const ms = performance.now() - s0;
    if (ms > slowest.ms) Object.assign(slowest, { file, ms });
    const fam = familyOf(file);
    const f = families.get(fam) ?? empty();
    families.set(fam, f);
    const entries = expected[file] ?? [];
    const bounces = entries.filter((e) => !NOT_BOUNCE_REASONS.has(e.reason));
    const names = (e: ExpectedEntry): string[] => [e.address, ...(e.also ?? [])].map((a) => a.toLowerCase());
    const details = new Map(scan.details.map((d) => [d.address.toLowerCase(), d]));
    for (const e of bounces) {
      for (const t of [f, total]) t.expected++;
      const d = names(e)
        .map((n) => details.get(n))
        .find((x) => x !== undefined);
      if (d === undefined) {
        const why = scan.recognized ? `found ${scan.details.map((x) => x.address).join(",")}` : scan.reason;
        f.misses.push(`${file}: ${e.address} (${e.reason}) — ${scan.format}: ${why ?? ""}`);
        continue;
      }
      for (const t of [f, total]) t.found++;
      if ((d.kind === "permanent") === !e.soft) for (const t of [f, total]) t.kindAgree++;
      else
        f.kindMismatches.push(
          `${file}: ${e.address} ${e.reason}/${e.soft ? "soft" : "hard"} got ${d.kind}/${d.reason ?? "-"} [${d.status ?? ""}] ${d.diagnostic?.slice(0, 100) ?? ""}`,
        );
      // Sisimai names a delay report (Action: delayed) "expired"; we keep "delayed" apart, since a
      // delay must never disable a member: the same answer under another name
      const sameReason = d.reason === e.reason || (d.reason === "delayed" && e.reason === "expired");
      if (sameReason) for (const t of [f, total]) t.reasonAgree++;
    }
    const wanted = new Set(bounces.flatMap(names));
    for (const d of scan.details) {
      for (const t of [f, total]) t.reported++;
      if (entries.length > 0) for (const t of [f, total]) t.reportedAnswered++;
      if (wanted.has(d.address.toLowerCase())) for (const t of [f, total]) t.correct++;
      else
        f.falsePositives.push(
          `${file}: ${d.address} (${d.kind}, ${d.source})${entries.length === 0 ? " [reference silent]" : ""}`,
        );
    }
    const feedback = entries.filter((e) => e.reason === "feedback");
    if (feedback.length > 0) {
      complaints.expected++;
      if (scan.notBounce === "complaint") complaints.found++;
      else complaints.misses.push(`${file}: ${scan.reason ?? scan.format}`);
    }
    if (entries.length > 0 && entries.every((e) => e.reason === "vacation" || e.reason === "delivered")) {
      notBounces.expected++;
      if (scan.notBounce !== undefined && scan.details.length === 0) notBounces.found++;
      else notBounces.misses.push(`${file}: ${scan.notBounce ?? scan.format}`);
    }
  }
  return {
    families,
    total,
    complaints,
    notBounces,
    slowest,
    messages: files.length,
    seconds: (performance.now() - t0) / 1000,
  };
}

const pct = (a: number, b: number): string => (b === 0 ? "-" : ((100 * a) / b).toFixed(1) + "%");

/** One line per family: expected, found, recall, precision, hard/soft agreement. */
export function formatScore(score: CorpusScore, withMisses = true): string {
  const lines: string[] = [];
  const row = (name: string, f: FamilyScore): string =>
    `${name.padEnd(28)} ${String(f.found).padStart(4)}/${String(f.expected).padEnd(4)} recall ${pct(f.found, f.expected).padStart(6)}  precision ${pct(f.correct, f.reported).padStart(6)}  kind ${pct(f.kindAgree, f.found).padStart(6)}  reason ${pct(f.reasonAgree, f.found).padStart(6)}`;
  for (const [name, f] of [...score.families].sort((a, b) => a[0].localeCompare(b[0]))) {
    lines.push(row(name, f));
    if (withMisses) {
      for (const m of f.misses) lines.push(`    miss ${m}`);
      for (const m of f.falsePositives) lines.push(`    false positive ${m}`);
      for (const m of f.kindMismatches) lines.push(`    hard/soft differs ${m}`);
    }
  }
  lines.push(row("TOTAL", score.total));
  const t = score.total;
  lines.push(
    `precision where the reference names a recipient: ${pct(t.correct, t.reportedAnswered)} (${t.correct}/${t.reportedAnswered}); over every file: ${pct(t.correct, t.reported)} (${t.correct}/${t.reported})`,
  );
  lines.push(
    `hard/soft agreement: ${pct(t.kindAgree, t.found)} (${t.kindAgree}/${t.found}); reason agreement: ${pct(t.reasonAgree, t.found)} (${t.reasonAgree}/${t.found})`,
  );
  lines.push(`complaints recognized ${score.complaints.found}/${score.complaints.expected}`);
  for (const m of score.complaints.misses) lines.push(`    miss ${m}`);
  lines.push(
    `auto-replies / delivered recognized as not bounces ${score.notBounces.found}/${score.notBounces.expected}`,
  );
  for (const m of score.notBounces.misses) lines.push(`    miss ${m}`);
  return lines.join("\n");
}
