// Where the daemon's time goes: run a workload through a real master with every process carrying the
// V8 CPU profiler (benchmarks/cpu-profiler.js preloaded through NODE_OPTIONS, so the workers the master
// spawns have it too; started and stopped by SIGUSR2 around the workload), then print each process's
// CPU time and its heaviest functions and packages (self time).
// Optionally count system calls per process with strace (--strace; needs strace installed).
//
//   node benchmarks/profile.js [--case=relay|fanout] [--msgs=2000] [--posts=200] [--members=100]
//        [--via=enqueue|lmtp] [--top=15] [--out=DIR (keeps the .cpuprofile files)] [--strace] [--runners=JSON, e.g.
//        '{"incoming":{"concurrency":8}}']
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { Switchboard } from "../dist/queue/switchboard.js";
import { freePort, injectLmtp } from "./e2e.js";
import {
  ROOT,
  arg,
  benchDir,
  flag,
  fmt,
  isMain,
  log,
  makePost,
  num,
  sleep,
  startDaemon,
  startSink,
  table,
} from "./lib.js";

/** Self time by function and by package of one .cpuprofile, idle excluded. */
export function summarize(file, top) {
  const p = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < p.samples.length; i++)
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const fns = new Map();
  const pkgs = new Map();
  let busy = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    if (cf.functionName === "(idle)") continue;
    busy += us;
    const url = cf.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, "$1/");
    const key = `${cf.functionName || "(anonymous)"} ${url ? `${url}:${cf.lineNumber + 1}` : "(native)"}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const pkg = url.startsWith("node_modules/")
      ? url
          .split("/")
          .slice(0, url.split("/")[1].startsWith("@") ? 3 : 2)
          .join("/")
      : url.startsWith("dist/")
        ? url.split("/").slice(0, 2).join("/")
        : url.startsWith("node:")
          ? url.split("/")[0].replace(/^node:internal.*/, "node:internal")
          : cf.functionName.startsWith("(")
            ? cf.functionName
            : "(native)";
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us);
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { busyMs: busy / 1000, fns: sorted(fns), pkgs: sorted(pkgs) };
}

async function workload(daemon, sink, kind, n, members, lmtpPort) {
  const sb = await Switchboard.open({ root: daemon.qfiles, queue: "incoming" });
  const list = "prof@lists.example.com";
  const from = "m0@example.com";
  const msgs = Array.from({ length: n }, (_, i) => makePost(i, { from, to: list }));
  const meta = { sender: from, recipients: [list], to: list, list, kind: "post" };
  const t0 = Date.now();
  let next = 0;
  if (lmtpPort) await injectLmtp(lmtpPort, msgs, from, list, kind === "relay" ? 4 : 1);
  else
    await Promise.all(
      Array.from({ length: kind === "relay" ? 4 : 1 }, async () => {
        while (next < msgs.length) await sb.enqueue(msgs[next++], meta);
      }),
    );
  const s = await sink.waitFor(n * members, 300_000);
  log(`${kind}: ${s.recipients}/${n * members} deliveries in ${fmt((s.last_ts * 1000 - t0) / 1000, 2)} s`);
}

export async function main() {
  const kind = arg("case", "relay");
  const n = kind === "relay" ? num("msgs", 2000) : num("posts", 200);
  const members = kind === "relay" ? 1 : num("members", 100);
  const top = num("top", 15);
  const { dir, cleanup } = benchDir("qrunner-bench-prof-");
  const profDir = arg("out", path.join(dir, "profiles"));
  mkdirSync(profDir, { recursive: true });
  const sink = await startSink(dir, { expect: n * members });
  const lmtpPort = arg("via", "enqueue") === "lmtp" ? await freePort() : null;
  let daemon;
  try {
    daemon = await startDaemon(dir, {
      hosts: [{ host: "127.0.0.1", port: sink.port }],
      lists: [
        {
          address: "prof@lists.example.com",
          members: Array.from({ length: members }, (_, i) => `m${i}@example.com`),
        },
      ],
      runners: JSON.parse(arg("runners", "{}")),
      extra: lmtpPort
        ? `intake: { lmtp: { listen: "127.0.0.1:${lmtpPort}", max_transactions: 1000000 } }`
        : "",
      env: {
        NODE_OPTIONS: `--import=${path.join(ROOT, "benchmarks/cpu-profiler.js")}`,
        QRUNNER_PROFILE_DIR: profDir,
      },
    });
    await sleep(500);
    const procs = [daemon.pid, ...daemon.workers().map((w) => w.pid)];
    const signal = () => procs.forEach((p) => process.kill(p, "SIGUSR2"));
    const tracers = [];
    if (flag("strace"))
      for (const w of [{ pid: daemon.pid, name: "master" }, ...daemon.workers()]) {
        const out = path.join(dir, `strace-${w.name.replace(/[ /:]/g, "_")}.txt`);
        const t = spawn("strace", ["-c", "-f", "-o", out, "-p", String(w.pid)], { stdio: "ignore" });
        tracers.push({ t, out, name: w.name });
      }
    if (tracers.length) await sleep(500);
    const pids = Object.fromEntries([
      [daemon.pid, "master"],
      ...daemon.workers().map((w) => [w.pid, w.name]),
    ]);
    signal();
    await sleep(100);
    await workload(daemon, sink, kind, n, members, lmtpPort);
    signal();
    for (const { t } of tracers) t.kill("SIGINT");
    await sleep(1000);
    await daemon.stop();
    daemon = null;
    for (const file of readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"))) {
      const pid = Number(file.split(".")[0]);
      const name = pids[pid] ?? `pid ${pid}`;
      const s = summarize(path.join(profDir, file), top);
      if (s.busyMs < 50) continue;
      table(
        `${name}: ${fmt(s.busyMs, 0)} ms on CPU during the workload, by package`,
        ["package", "self ms", "%"],
        s.pkgs.map(([k, us]) => [k, fmt(us / 1000, 1), fmt((100 * us) / 1000 / s.busyMs, 1)]),
      );
      table(
        `${name}: heaviest functions`,
        ["function", "self ms", "%"],
        s.fns.map(([k, us]) => [k.slice(0, 110), fmt(us / 1000, 1), fmt((100 * us) / 1000 / s.busyMs, 1)]),
      );
    }
    for (const { out, name } of tracers) {
      try {
        const lines = readFileSync(out, "utf8").split("\n").slice(0, 14);
        process.stderr.write(
          `\nsyscalls of ${name} during the workload (strace -c -f):\n${lines.join("\n")}\n`,
        );
      } catch {
        log(`no strace output for ${name}`);
      }
    }
    if (arg("out")) log(`profiles kept in ${profDir} (open them in Chrome DevTools > Performance)`);
  } finally {
    await daemon?.stop();
    await sink.stop();
    cleanup();
  }
}

if (isMain(import.meta.url)) await main();
