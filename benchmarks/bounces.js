// The bounce detector (`qrunner bounce scan`, the bounce runner's reader) over the development set of
// real bounces (../shared/bounces/real): messages per second, and the slowest message. Then hostile
// inputs (a 250 KB Final-Recipient, a 250 KB Diagnostic-Code, 250 KB notices of addresses or of "@")
// at 1x and 4x their size (inputs of 250 KB and 1 MB: smaller ones measure caches, not the algorithm), side by side: time must grow in proportion to size (no regex backtracking).
//
//   node benchmarks/bounces.js [--quick] [--json] [--rounds=N] [--corpus=DIR]
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, arg, emit, fmt, isMain, log, median, num, pct, table, target, targetsTable } from "./lib.js";

const CORPUS = arg("corpus", path.resolve(ROOT, "../shared/bounces/real"));

/** Hostile messages whose cost must stay linear in `scale`. */
const HOSTILE = {
  "250 KB Final-Recipient": (scale) =>
    dsn(`Final-Recipient: rfc822; ${"<".repeat(256_000 * scale)}a@b.example.com\r\nAction: failed`),
  "250 KB Diagnostic-Code": (scale) =>
    dsn(
      `Final-Recipient: rfc822; a@b.example.com\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 ${"5.1.1 user ".repeat(25_600 * scale)}`,
    ),
  "notice of addresses": (scale) =>
    head("text/plain") +
    ("unknown user a@b.example.com c@d.example.org ".repeat(20) + "\n").repeat(250 * scale),
  "line of @": (scale) => head("text/plain") + ("@".repeat(999) + "\n").repeat(250 * scale),
};

function head(ct) {
  return `From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: ${ct}\r\n\r\n`;
}
function dsn(block) {
  return (
    head('multipart/report; report-type=delivery-status; boundary="b"') +
    `--b\r\nContent-Type: text/plain\r\n\r\nThe mail system\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n${block}\r\n--b--\r\n`
  );
}

/**
 * The least time of `reps` runs of each input, the two interleaved (side by side, so that a busy
 * moment of a shared machine hits both): the least is the run the machine did not disturb.
 */
async function timePair(scan, a, b, reps) {
  const ta = [];
  const tb = [];
  for (let i = 0; i < reps; i++) {
    for (const [buf, xs] of [
      [a, ta],
      [b, tb],
    ]) {
      const t0 = performance.now();
      await scan(buf);
      xs.push(performance.now() - t0);
    }
  }
  return [Math.min(...ta), Math.min(...tb)];
}

export async function main() {
  const { scanBounce } = await import(pathToFileURL(path.join(ROOT, "dist/lists/bounces/detect.js")).href);
  const rounds = num("rounds", 5, 2);
  const targets = [];
  let corpus = null;
  if (existsSync(CORPUS)) {
    const files = readdirSync(CORPUS)
      .filter((f) => f.endsWith(".eml"))
      .sort();
    const bufs = files.map((f) => readFileSync(path.join(CORPUS, f)));
    for (const b of bufs) await scanBounce(b); // warm-up: JIT and lazy imports
    const perFile = files.map(() => []);
    const rates = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < bufs.length; i++) {
        const s = performance.now();
        await scanBounce(bufs[i]);
        perFile[i].push(performance.now() - s);
      }
      rates.push(bufs.length / ((performance.now() - t0) / 1000));
    }
    const perFileMedian = perFile.map((xs) => median(xs));
    const worst = Math.max(...perFileMedian);
    const worstFile = files[perFileMedian.indexOf(worst)];
    const bytes = bufs.reduce((n, b) => n + b.length, 0);
    corpus = {
      messages: files.length,
      bytes,
      rounds,
      messages_per_s: median(rates),
      worst_ms: worst,
      worst_file: worstFile,
      p99_ms: pct(perFileMedian, 99),
      median_ms: median(perFileMedian),
    };
    table(
      `bounces: scanBounce over ${files.length} real bounces (${fmt(bytes / 1e6, 1)} MB), ${rounds} rounds`,
      ["messages/s (median round)", "median ms", "p99 ms", "worst ms", "worst message"],
      [
        [
          fmt(corpus.messages_per_s, 0),
          fmt(corpus.median_ms, 3),
          fmt(corpus.p99_ms, 2),
          fmt(worst, 2),
          worstFile,
        ],
      ],
    );
    targets.push(target("bounce scan messages per second (dev set)", corpus.messages_per_s, ">=", 200, "/s"));
    targets.push(target("slowest real bounce", worst, "<=", 50, " ms"));
  } else {
    log(`bounces: ${CORPUS} is absent; the corpus part is skipped (pass --corpus=DIR)`);
  }

  const hostile = [];
  for (const [name, make] of Object.entries(HOSTILE)) {
    const small = Buffer.from(make(1), "latin1");
    const large = Buffer.from(make(4), "latin1");
    await timePair(scanBounce, small, large, 1); // warm-up
    const [a, b] = await timePair(scanBounce, small, large, Math.max(5, rounds * 2));
    hostile.push({ name, kb: small.length / 1024, ms: a, kb4: large.length / 1024, ms4: b, ratio: b / a });
  }
  table(
    "bounces: hostile inputs at 1x and 4x the size, least of interleaved runs (linear time gives a ratio near 4)",
    ["input", "KB", "ms", "KB x4", "ms x4", "ratio"],
    hostile.map((h) => [h.name, fmt(h.kb, 0), fmt(h.ms, 1), fmt(h.kb4, 0), fmt(h.ms4, 1), fmt(h.ratio, 2)]),
  );
  for (const h of hostile) targets.push(target(`${h.name}: 4x size costs`, h.ratio, "<=", 6, "x"));
  targetsTable("bounces: targets", targets);
  emit("bounces", { corpus, hostile, targets });
}

if (isMain(import.meta.url)) await main();
