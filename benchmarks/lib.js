// Shared helpers for the benchmarks: arguments, timing, a quiet machine, /proc accounting, the peers'
// SMTP sink, a qrunner daemon in a temp dir, tables and JSON output. Plain ESM, no build step.
import { Buffer } from "node:buffer";
import { setTimeout, clearTimeout } from "node:timers";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const PEERS = process.env.PEERS_DIR ?? path.resolve(ROOT, "../shared/peers");
export const PY = "/usr/bin/python3";
export const QRUNNER = path.join(ROOT, "bin/qrunner");

export const argv = process.argv.slice(2);
export const JSON_OUT = argv.includes("--json");
export const QUICK = argv.includes("--quick");
export const FULL = argv.includes("--full");

export function arg(name, dflt) {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}
export function flag(name) {
  return argv.includes(`--${name}`);
}
/** A numeric option: --name=V, else the quick or the normal default. */
export function num(name, normal, quick = normal) {
  return Number(arg(name, QUICK ? quick : normal));
}

/** A temp dir on the same disk as the queues would be (default os.tmpdir(); --dir=PATH to choose). */
export function benchDir(prefix) {
  const base = arg("dir", os.tmpdir());
  const dir = mkdtempSync(path.join(base, prefix));
  return {
    dir,
    cleanup: () => (flag("keep") ? log(`kept ${dir}`) : rmSync(dir, { recursive: true, force: true })),
  };
}

export function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function log(msg) {
  process.stderr.write(`bench: ${msg}\n`);
}

export function table(title, headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join("  ");
  process.stderr.write(
    `\n${title}\n${line(headers)}\n${line(widths.map((w) => "-".repeat(w)))}\n${rows.map(line).join("\n")}\n`,
  );
}

export function emit(name, result) {
  if (JSON_OUT) process.stdout.write(JSON.stringify({ bench: name, ...result }) + "\n");
}

export function fmt(x, digits = 2) {
  return x === null || x === undefined || Number.isNaN(Number(x)) ? "-" : Number(x).toFixed(digits);
}

// ---- statistics
export const best = (xs) => Math.max(...xs);
export const least = (xs) => Math.min(...xs);
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
/** Nearest-rank percentile, p in [0, 100]. */
export function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
/** "median (min..max)" of a series */
export function spread(xs, digits = 0) {
  return xs.length > 1
    ? `${fmt(median(xs), digits)} (${fmt(least(xs), digits)}..${fmt(best(xs), digits)})`
    : fmt(xs[0], digits);
}
/** A target line for the summary: value against a bound; `info` marks a figure shown beside the targets. */
export function target(name, value, op, bound, unit = "", { info = false } = {}) {
  const met =
    value !== null &&
    value !== undefined &&
    !Number.isNaN(value) &&
    (op === ">=" ? value >= bound : value <= bound);
  return { name, value, op, bound, unit, met, ...(info ? { info: true } : {}) };
}
export function verdict(t) {
  return t.info ? "info" : t.met ? "met" : "MISSED";
}
export function targetsTable(title, targets) {
  table(
    title,
    ["target", "measured", "bound", "met"],
    targets.map((t) => [t.name, `${fmt(t.value)}${t.unit}`, `${t.op} ${t.bound}${t.unit}`, verdict(t)]),
  );
}

// ---- the machine: quiet wait and CPU accounting (as ../shared/peers/lib.sh does)
const HZ = 100;
export function cpuJiffies() {
  const f = readFileSync("/proc/stat", "latin1").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1] + f[2] + f[5] + f[6] + f[7], idle: f[3] + f[4] };
}
export function machineBusyS() {
  return cpuJiffies().busy / HZ;
}
export function loadavg() {
  return Number(readFileSync("/proc/loadavg", "latin1").split(" ")[0]);
}
/**
 * Wait (up to --quiet-wait seconds, default 60) until the machine was at most 10% busy over 2 s.
 * Returns the machine's state just before the measurement.
 */
export async function waitQuiet(maxS = Number(arg("quiet-wait", 60))) {
  const end = Date.now() + maxS * 1000;
  let busy = 100;
  for (;;) {
    const a = cpuJiffies();
    await sleep(maxS > 0 ? 2000 : 200);
    const b = cpuJiffies();
    busy = Math.round((100 * (b.busy - a.busy)) / (b.busy - a.busy + (b.idle - a.idle) + 1));
    if (busy <= 10 || Date.now() >= end) break;
  }
  return { busy_pct_before: busy, loadavg_1m_before: loadavg() };
}

/** utime+stime of a process in seconds (null when gone). */
export function procCpuS(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // QRUNNER_BENCH_CPU=sys: system time only (to split user and kernel time when profiling)
    if (process.env.QRUNNER_BENCH_CPU === "sys") return Number(f[12]) / HZ;
    return (Number(f[11]) + Number(f[12])) / HZ;
  } catch {
    return null;
  }
}
/** Resident set size in MB (VmRSS; null when gone). */
export function procRssMB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
export function childrenOf(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, "latin1")
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number),
    );
  } catch {
    return [];
  }
}
function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0");
  } catch {
    return [];
  }
}

// ---- messages
const LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n";
/** A ~3 KB list post shaped like the peers' (make_raw_email in bench_mailman_switchboard.py). */
export function makePost(
  i,
  { from = "alice@example.com", to = "bench@lists.example.com", size = 3000, run = process.pid } = {},
) {
  const headers =
    `Return-Path: <${from}>\n` +
    "Received: from mx.example.com (mx.example.com [127.0.0.1])\n" +
    `\tby lists.example.com (Postfix) with ESMTPS id 4F2A81C0${i.toString(16).toUpperCase().padStart(4, "0")}\n` +
    `\tfor <${to}>; Fri, 28 Nov 2025 12:00:00 +0000 (UTC)\n` +
    `From: Alice Example <${from}>\n` +
    `To: ${to}\n` +
    `Subject: Benchmark post number ${i}\n` +
    "Date: Fri, 28 Nov 2025 12:00:00 +0000\n" +
    `Message-ID: <bench-${i}-${run}@example.com>\n` +
    "MIME-Version: 1.0\n" +
    'Content-Type: text/plain; charset="utf-8"\n' +
    "Content-Transfer-Encoding: 7bit\n" +
    "User-Agent: bench/1.0\n\n";
  const body = LOREM.repeat(Math.ceil(size / LOREM.length) + 1).slice(0, Math.max(0, size - headers.length));
  return Buffer.from(headers + body, "latin1");
}

// ---- the peers' SMTP sink
/**
 * Start ../shared/peers/sink.py on a free loopback port; resolves once it listens.
 * stats() reads its stats file (after SIGUSR1 when fresh=true); waitFor(k) polls until k recipient
 * deliveries arrived.
 */
export async function startSink(dir, { expect = 0, extra = [], name = "sink" } = {}) {
  const out = path.join(dir, `${name}.json`);
  const errFd = openSync(path.join(dir, `${name}.err`), "w");
  const child = spawn(
    PY,
    [
      path.join(PEERS, "sink.py"),
      "--port",
      "0",
      "--out",
      out,
      "--expect",
      String(expect),
      "--flush",
      "0.25",
      "--no-ids",
      ...extra,
    ],
    {
      stdio: ["ignore", "ignore", errFd],
    },
  );
  closeSync(errFd);
  const exited = new Promise((r) => child.once("exit", r));
  const t = Date.now();
  while (!existsSync(out)) {
    if (child.exitCode !== null || Date.now() - t > 10_000)
      throw new Error(`sink did not start: ${readFileSync(path.join(dir, `${name}.err`), "utf8")}`);
    await sleep(20);
  }
  const read = () => JSON.parse(readFileSync(out, "utf8"));
  const sink = {
    pid: child.pid,
    port: read().port,
    async stats(fresh = true) {
      if (fresh && child.exitCode === null) {
        const before = read().written;
        child.kill("SIGUSR1");
        for (let i = 0; i < 100; i++) {
          await sleep(10);
          try {
            const s = read();
            if (s.written !== before) return s;
          } catch {
            // being replaced
          }
        }
      }
      return read();
    },
    /** Poll until `k` recipient deliveries (or the timeout); returns the last stats read. */
    async waitFor(k, timeoutMs = 600_000) {
      const end = Date.now() + timeoutMs;
      let s;
      for (;;) {
        try {
          s = read();
        } catch {
          await sleep(5);
          continue;
        }
        if (s.recipients >= k || Date.now() > end) return s;
        await sleep(50);
      }
    },
    cpuS: () => procCpuS(child.pid),
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
      try {
        return read();
      } catch {
        return null;
      }
    },
  };
  return sink;
}

// ---- a qrunner daemon in a temp dir
/**
 * Write a config and lists under `dir` (config/qrunner.yaml, config/lists/, qfiles/, var/), then start the master
 * (`node bin/qrunner start -C cfg --allow-root`) with its logs (and its workers') in dir/qrunner.log.
 * Resolves once the master logged "all workers ready"; with `ready: false` at once, the master just
 * spawned (`startedAt`: the time just before the spawn, ms since the epoch). `node`: the node binary
 * to run it (and, through the master's process.execPath, its workers) with; default this one.
 */
export async function startDaemon(
  dir,
  {
    hosts,
    runners = {},
    lists = [],
    logLevel = arg("log-level", "info"),
    env = {},
    smtp = {},
    extra = "",
    node = process.execPath,
    ready: waitReady = true,
  },
) {
  // the shipped layout: config/qrunner.yaml and config/lists/, the queues and state beside config/,
  // logs (stdout, as journald would take them) outside the config folder
  const confDir = path.join(dir, "config");
  mkdirSync(path.join(confDir, "lists"), { recursive: true });
  const yaml = [
    "qfiles: ../qfiles",
    "state: ../var",
    "lists: lists",
    `log: { level: ${logLevel} }`,
    `runners: ${JSON.stringify(runners)}`,
    "smtp:",
    `  max_recipients: ${smtp.max_recipients ?? 500}`,
    "  hosts:",
    ...hosts.map((h) => `    - ${JSON.stringify(h)}`),
    "backoff: { schedule: [1s, 2s, 5s] }",
    extra,
    "",
  ].join("\n");
  const cfg = path.join(confDir, "qrunner.yaml");
  writeFileSync(cfg, yaml);
  for (const l of lists) {
    const body = {
      address: l.address,
      owners: ["owner@example.com"],
      members: l.members,
      nonmembers: "accept",
      archive: false,
      subject_prefix: l.subject_prefix ?? "[bench] ",
      ...(l.extra ?? {}),
    };
    writeFileSync(path.join(confDir, "lists", `${l.address}.yaml`), JSON.stringify(body, null, 1) + "\n");
  }
  const logFile = path.join(dir, "qrunner.log");
  const fd = openSync(logFile, "a");
  const startedAt = Date.now();
  const child = spawn(node, [QRUNNER, "start", "-C", cfg, "--allow-root"], {
    stdio: ["ignore", fd, fd],
    // that node first on PATH too, for anything started through `#!/usr/bin/env node`
    env: { ...process.env, PATH: `${path.dirname(node)}:${process.env.PATH ?? ""}`, ...env },
  });
  closeSync(fd);
  const exited = new Promise((r) => child.once("exit", (code, sig) => r(code ?? sig)));
  const t0 = Date.now();
  let notReady = [];
  for (;;) {
    if (!waitReady) break;
    await sleep(50);
    const text = readFileSync(logFile, "utf8");
    if (text.includes('"all workers ready"') || allReadyInStatus(path.join(dir, "var", "status.json"))) break;
    // a runner the benchmark does not use that cannot start (e.g. one still being written) does not
    // hold the benchmark up: go on once the runners on the mail path are ready, and say so
    const ready = new Set(
      [...text.matchAll(/"runner":"([a-z]+)"[^\n]*"msg":"worker ready"/g)].map((m) => m[1]),
    );
    if (Date.now() - t0 > 5000 && ["incoming", "outgoing", "backoff"].every((r) => ready.has(r))) {
      notReady = ["incoming", "outgoing", "bounce", "command", "archive", "backoff"].filter(
        (r) => !ready.has(r),
      );
      log(`warning: not every worker became ready (${notReady.join(", ")} did not); going on`);
      break;
    }
    if (child.exitCode !== null || Date.now() - t0 > 30_000) {
      child.kill("SIGKILL");
      throw new Error(`qrunner did not become ready:\n${text.slice(-3000)}`);
    }
  }
  const daemon = {
    pid: child.pid,
    cfg,
    dir,
    logFile,
    qfiles: path.join(dir, "qfiles"),
    state: path.join(dir, "var"),
    startedAt,
    readyMs: waitReady ? Date.now() - t0 : null,
    notReady,
    /** the worker processes: pid, runner, slice */
    workers() {
      return childrenOf(child.pid).map((pid) => {
        const c = cmdline(pid);
        const r = c.find((x) => x.startsWith("--runner="))?.slice(9) ?? "?";
        const s = c.find((x) => x.startsWith("--slice="))?.slice(8) ?? "?";
        return { pid, runner: r, slice: s, name: `${r} ${s}` };
      });
    },
    /** CPU seconds of the master and each worker now, keyed by name */
    cpu() {
      const out = { master: procCpuS(child.pid) };
      for (const w of daemon.workers()) out[w.name] = procCpuS(w.pid);
      return out;
    },
    rss() {
      const out = { master: procRssMB(child.pid) };
      for (const w of daemon.workers()) out[w.name] = procRssMB(w.pid);
      return out;
    },
    /** log lines that are errors or warnings (for a check that the run was clean) */
    problems() {
      return readFileSync(logFile, "utf8")
        .split("\n")
        .filter((l) => /"level":"(warn|error|fatal)"/.test(l));
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 40_000);
      await exited;
      clearTimeout(t);
    },
  };
  return daemon;
}

/** status.json says every worker is ready (works at any log level). */
function allReadyInStatus(file) {
  try {
    const st = JSON.parse(readFileSync(file, "utf8"));
    return st.workers.length > 0 && st.workers.every((w) => w.state === "ready");
  } catch {
    return false;
  }
}

/** Per-process CPU deltas between two daemon.cpu() snapshots, rounded, plus the total. */
export function cpuDelta(a, b) {
  const out = {};
  let total = 0;
  for (const [k, v] of Object.entries(b)) {
    const d = (v ?? 0) - (a[k] ?? 0);
    out[k] = Math.round(d * 100) / 100;
    total += d;
  }
  out.total = Math.round(total * 100) / 100;
  return out;
}

/** Count files in a queue dir by extension. */
export function queueCounts(qfiles) {
  const out = {};
  if (!existsSync(qfiles)) return out;
  for (const q of readdirSync(qfiles).filter((d) => !d.startsWith("."))) {
    try {
      const n = readdirSync(path.join(qfiles, q)).length;
      if (n) out[q] = n;
    } catch {
      // not a dir
    }
  }
  return out;
}

// ---- peers
/**
 * Run a peer benchmark script; its stderr goes to ours (prefixed), its last stdout line is its JSON.
 * Resolves with the parsed JSON (null when the script failed).
 */
export function runPeer(label, cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
      if (flag("verbose")) process.stderr.write(`[${label}] ${d}`);
    });
    child.on("exit", (code) => {
      const line = out.trim().split("\n").filter(Boolean).at(-1);
      try {
        const r = JSON.parse(line ?? "");
        resolve(r);
      } catch {
        log(`${label} failed (exit ${code}):\n${err.slice(-2000)}`);
        resolve(null);
      }
    });
  });
}

/** Is the peer installed? (bash ../shared/peers/install.sh installs them) */
export function havePeer(which) {
  if (which === "mailman")
    return existsSync("/usr/bin/mailman") && existsSync("/usr/lib/python3/dist-packages/mailman");
  if (which === "postfix") return existsSync("/usr/sbin/postfix") && existsSync("/usr/sbin/smtp-source");
  return false;
}

/** Run the main of a benchmark file when it is run directly (node benchmarks/x.js). */
export function isMain(url) {
  return process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(url);
}

// ---- the entry the queue benchmarks (switchboard.js, spares.js) write
/** A 3 KB post to dev@example.org, and its entry meta. */
export const benchMessage = Buffer.concat([
  Buffer.from("From: a@example.net\nTo: dev@example.org\nSubject: bench\nMessage-ID: <x@example.net>\n\n"),
  Buffer.alloc(2940, "x"),
]);
export const benchMeta = {
  sender: "a@example.net",
  recipients: ["dev@example.org"],
  list: "dev@example.org",
  kind: "post",
};
/** Operations per second. */
export const rate = (n, ms) => (n / ms) * 1000;
