// `qrunner inject` as a whole process (an MTA's pipe runs one per message) against `node -e 0`, and
// `qrunner --version` (the CLI's own load cost), interleaved run by run.
//
//   node benchmarks/inject.js [--quick] [--json] [--runs=30]
import { spawnSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  QRUNNER,
  benchDir,
  emit,
  fmt,
  isMain,
  log,
  makePost,
  median,
  now,
  num,
  pct,
  table,
  target,
  targetsTable,
  waitQuiet,
} from "./lib.js";

const LIST = "inj@lists.example.com";

export async function main() {
  const runs = num("runs", 30, 15);
  const { dir, cleanup } = benchDir("qrunner-bench-inj-");
  try {
    // a site as an MTA would see it: config, one list of 100 members, no daemon needed to queue
    const members = Array.from({ length: 100 }, (_, i) => `m${i}@example.com`);
    writeFileSync(
      path.join(dir, "qrunner.yaml"),
      "qfiles: qfiles\nstate: var\nlists: lists\nsmtp: { hosts: [{ host: 127.0.0.1, port: 25 }] }\n",
    );
    await import("node:fs").then((fs) => fs.mkdirSync(path.join(dir, "lists")));
    writeFileSync(
      path.join(dir, "lists", `${LIST}.yaml`),
      JSON.stringify({ address: LIST, owners: ["o@example.com"], members }) + "\n",
    );
    const cfg = path.join(dir, "qrunner.yaml");
    const msg = path.join(dir, "post.eml");
    writeFileSync(msg, makePost(1, { from: "m0@example.com", to: LIST }));
    const cmds = {
      "node -e 0": [process.execPath, ["-e", "0"], null],
      "qrunner --version": [process.execPath, [QRUNNER, "--version"], null],
      "qrunner inject": [process.execPath, [QRUNNER, "inject", `--to=${LIST}`, "-C", cfg, msg], null],
    };
    // warm the page cache and check that inject works
    for (const [name, [file, args]] of Object.entries(cmds)) {
      const r = spawnSync(file, args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${name} failed (${r.status}): ${r.stderr}`);
    }
    const machine = await waitQuiet();
    const T = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
    for (let i = 0; i < runs; i++) {
      const order = Object.keys(cmds);
      for (let j = 0; j < order.length; j++) {
        const name = order[(i + j) % order.length];
        const [file, args] = cmds[name];
        const t0 = now();
        const r = spawnSync(file, args, { stdio: ["ignore", "ignore", "pipe"] });
        T[name].push(now() - t0);
        if (r.status !== 0) log(`${name} exited ${r.status}: ${r.stderr}`);
      }
    }
    const queued = readdirSync(path.join(dir, "qfiles", "incoming")).length;
    const base = median(T["node -e 0"]);
    table(
      `Process wall time, ${runs} runs each, interleaved (one list of 100 members; ${queued} posts queued)`,
      ["command", "min ms", "median ms", "p90 ms", "max ms", "median vs node -e 0"],
      Object.entries(T).map(([k, xs]) => [
        k,
        fmt(pct(xs, 0), 1),
        fmt(median(xs), 1),
        fmt(pct(xs, 90), 1),
        fmt(pct(xs, 100), 1),
        fmt(median(xs) / base),
      ]),
    );
    const ratio = median(T["qrunner inject"]) / base;
    const targets = [target("qrunner inject wall time vs node -e 0 (medians)", ratio, "<=", 2, "x")];
    targetsTable("inject: targets", targets);
    emit("inject", {
      runs,
      machine,
      median_ms: Object.fromEntries(Object.entries(T).map(([k, xs]) => [k, median(xs)])),
      min_ms: Object.fromEntries(Object.entries(T).map(([k, xs]) => [k, pct(xs, 0)])),
      ratio,
      targets,
    });
  } finally {
    cleanup();
  }
}

if (isMain(import.meta.url)) await main();
