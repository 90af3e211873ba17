// `npm run bench`: every benchmark in turn, each in its own process (no benchmark's heap, handles or
// page cache churn carries over into the next), tables on stderr, and with --json one line per
// benchmark on stdout. Ends with every target, met or missed.
//
//   npm run bench                                   # everything (about 20-30 min on 2 cores)
//   npm run bench -- --quick                        # a short run (about 5-8 min)
//   npm run bench -- --only=switchboard,e2e --json  # some of them, JSON lines on stdout
//   npm run bench -- --full                         # the 1,000,000-entry backlog too
//   npm run bench -- --only=hostile                 # CPU per MiB of hostile mail on each path (~2 min)
// Other flags are passed to every benchmark: --dir=PATH (the disk to measure), --quiet-wait=S,
// --no-peers, --rounds=N, --keep, --verbose (peer scripts' logs); see the head of each file.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { JSON_OUT, arg, argv, fmt, log, table, verdict } from "./lib.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BENCHMARKS = [
  "switchboard",
  "e2e",
  "startup",
  "latency",
  "inject",
  "memory",
  "scaling",
  "bounces",
  "hostile",
  "cluster",
];

function runOne(name, args) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [path.join(HERE, `${name}.js`), ...args, "--json"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("exit", (code, signal) => {
      const lines = out.split("\n").filter((l) => l.startsWith("{"));
      const results = lines.flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return [];
        }
      });
      resolve({ name, code: code ?? signal, seconds: (Date.now() - t0) / 1000, results });
    });
  });
}

const only = arg("only", BENCHMARKS.join(",")).split(",").filter(Boolean);
const unknown = only.filter((b) => !BENCHMARKS.includes(b));
if (unknown.length) {
  process.stderr.write(
    `bench: unknown benchmark(s) ${unknown.join(", ")}; choose among ${BENCHMARKS.join(", ")}\n`,
  );
  process.exit(64);
}
const pass = argv.filter((a) => !a.startsWith("--only=") && a !== "--json");
const started = new Date();
log(
  `qrunner benchmarks: ${only.join(", ")} (${pass.join(" ") || "defaults"}), node ${process.version}, started ${started.toISOString()}`,
);
const all = [];
for (const name of only) {
  log(`==== ${name}`);
  const r = await runOne(name, pass);
  if (r.code !== 0) log(`${name} failed (exit ${r.code}) after ${fmt(r.seconds, 0)} s`);
  all.push(r);
  for (const res of r.results) if (JSON_OUT) process.stdout.write(JSON.stringify(res) + "\n");
}
const rows = all.flatMap((r) =>
  r.code !== 0 && r.results.length === 0
    ? [[r.name, "benchmark failed", "-", "-", "FAILED"]]
    : r.results.flatMap((res) =>
        (res.targets ?? []).map((t) => [
          r.name,
          t.name,
          `${fmt(t.value)}${t.unit}`,
          `${t.op} ${t.bound}${t.unit}`,
          verdict(t),
        ]),
      ),
);
table(
  `All targets (${only.join(", ")}; ${fmt((Date.now() - started.getTime()) / 60000, 1)} min)`,
  ["benchmark", "target", "measured", "bound", "met"],
  rows,
);
process.exitCode = all.some((r) => r.code !== 0) ? 1 : 0;
