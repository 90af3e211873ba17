// Memory: resident memory (VmRSS, from /proc) of the master and each worker, 3 s after start, idle
// (once it stopped falling: V8 returns start-up pages after some seconds without work), under load
// (200 posts x 100 members injected at once), and the whole daemon's total. PSS (proportional set
// size, shared pages split between the processes sharing them) is shown beside it: RSS counts the
// node binary's pages once per process.
//
//   node benchmarks/memory.js [--quick] [--json] [--posts=200] [--members=100]
import { readFileSync } from "node:fs";
import { setInterval, clearInterval } from "node:timers";
import { Switchboard } from "../dist/queue/switchboard.js";
import {
  benchDir,
  emit,
  fmt,
  isMain,
  log,
  makePost,
  num,
  procRssMB,
  sleep,
  startDaemon,
  startSink,
  table,
  target,
  targetsTable,
} from "./lib.js";

const LIST = "mem@lists.example.com";

function pssMB(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** RSS and PSS of the master and every worker, keyed by name. */
function snapshot(daemon) {
  const procs = [{ name: "master", pid: daemon.pid }, ...daemon.workers()];
  return Object.fromEntries(procs.map((p) => [p.name, { rss: procRssMB(p.pid), pss: pssMB(p.pid) }]));
}
function maxInto(acc, snap) {
  for (const [k, v] of Object.entries(snap)) {
    const a = (acc[k] ??= { rss: 0, pss: 0 });
    a.rss = Math.max(a.rss, v.rss ?? 0);
    a.pss = Math.max(a.pss, v.pss ?? 0);
  }
  return acc;
}
const total = (snap, key) => Object.values(snap).reduce((n, v) => n + (v[key] ?? 0), 0);

/** Sample every second until the total RSS has not fallen for 10 s (or `maxMs` passed); the last sample. */
async function settled(daemon, maxMs) {
  const t0 = Date.now();
  let snap = snapshot(daemon);
  let best = total(snap, "rss");
  let still = 0;
  while (still < 10 && Date.now() - t0 < maxMs) {
    await sleep(1000);
    snap = snapshot(daemon);
    const now = total(snap, "rss");
    if (process.env.QRUNNER_BENCH_TRACE)
      log(`memory: ${((Date.now() - t0) / 1000).toFixed(0)} s: ${now.toFixed(1)} MB`);
    if (now < best - 0.2) {
      best = now;
      still = 0;
    } else still++;
  }
  return snap;
}

export async function main() {
  const posts = num("posts", 200, 100);
  const members = num("members", 100);
  const { dir, cleanup } = benchDir("qrunner-bench-mem-");
  const sink = await startSink(dir, { expect: posts * members });
  let daemon;
  try {
    daemon = await startDaemon(dir, {
      hosts: [{ host: "127.0.0.1", port: sink.port }],
      lists: [{ address: LIST, members: Array.from({ length: members }, (_, i) => `m${i}@example.com`) }],
    });
    // just started: 3 s after every worker is ready, the largest of several samples
    await sleep(3000);
    let started = {};
    for (let i = 0; i < 5; i++, await sleep(200)) started = maxInto(started, snapshot(daemon));
    // idle: once V8 has handed back its start-up pages (its memory reducer runs after some seconds
    // without work), i.e. once the total stopped falling for 10 s (at most 60 s)
    const idle = await settled(daemon, 60_000);
    // under load
    let load = {};
    const sampler = setInterval(() => (load = maxInto(load, snapshot(daemon))), 50);
    const sb = await Switchboard.open({ root: daemon.qfiles, queue: "incoming" });
    const from = "m0@example.com";
    for (let i = 0; i < posts; i++)
      await sb.enqueue(makePost(i, { from, to: LIST }), {
        sender: from,
        recipients: [LIST],
        to: LIST,
        list: LIST,
        kind: "post",
      });
    const s = await sink.waitFor(posts * members, 300_000);
    clearInterval(sampler);
    log(`memory: load delivered ${s.recipients}/${posts * members}`);
    const after = await settled(daemon, 60_000);

    const names = Object.keys(load);
    table(
      `Memory (MB) of the daemon: 3 s after start, idle (settled), peak under load (${posts} posts x ${members} members), idle again after the load`,
      ["process", "start RSS", "idle RSS", "idle PSS", "load peak RSS", "load peak PSS", "after RSS"],
      [
        ...names.map((k) => [
          k,
          fmt(started[k]?.rss, 1),
          fmt(idle[k]?.rss, 1),
          fmt(idle[k]?.pss, 1),
          fmt(load[k]?.rss, 1),
          fmt(load[k]?.pss, 1),
          fmt(after[k]?.rss, 1),
        ]),
        [
          "total",
          fmt(total(started, "rss"), 1),
          fmt(total(idle, "rss"), 1),
          fmt(total(idle, "pss"), 1),
          fmt(total(load, "rss"), 1),
          fmt(total(load, "pss"), 1),
          fmt(total(after, "rss"), 1),
        ],
      ],
    );
    const workers = names.filter((k) => k !== "master");
    const maxIdleWorker = Math.max(...workers.map((k) => idle[k]?.rss ?? 0));
    const maxStartWorker = Math.max(...workers.map((k) => started[k]?.rss ?? 0));
    const targets = [
      target("largest idle worker RSS", maxIdleWorker, "<=", 50, " MB"),
      target("largest worker RSS 3 s after start", maxStartWorker, "<=", 50, " MB"),
      target("whole daemon RSS, idle", total(idle, "rss"), "<=", 350, " MB"),
      target("whole daemon RSS, 3 s after start", total(started, "rss"), "<=", 350, " MB"),
      target("whole daemon RSS, sum of peaks under load", total(load, "rss"), "<=", 350, " MB"),
    ];
    targetsTable("Memory: targets (Mailman 3: about 85 MB per runner process)", targets);
    emit("memory", { posts, members, workers: workers.length, started, idle, load, after, targets });
  } finally {
    await daemon?.stop();
    await sink.stop();
    cleanup();
  }
}

if (isMain(import.meta.url)) await main();
