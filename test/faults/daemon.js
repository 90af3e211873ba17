// The daemon under test, as an operator runs it: `node bin/qrunner start -C FILE` (the master and its
// real worker processes). This module starts it, reads its JSON log lines (master and workers share
// its stdout), finds worker pids among the master's children in /proc, and kills what it is told to.
import { spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { childrenOf } from "../../benchmarks/lib.js";

/** Children of a process, from /proc: the benchmarks' reader (benchmarks/lib.js), shared. */
export { childrenOf };

export function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resident set size in bytes (null when the process is gone). */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Worker processes of a master: its children started with `--runner=`. */
export function workersOf(masterPid) {
  const out = [];
  for (const pid of childrenOf(masterPid)) {
    const args = cmdline(pid);
    const runner = args.find((a) => a.startsWith("--runner="));
    const slice = args.find((a) => a.startsWith("--slice="));
    if (runner) out.push({ pid, runner: runner.slice(9), slice: slice?.slice(8) ?? "" });
  }
  return out;
}

/**
 * Tallies what the log lines say. Workers killed by us are expected; any other worker exit that the
 * master calls unexpected, a worker's fatal line, or a stall is counted.
 */
export class LogTally {
  constructor() {
    this.killedPids = new Set();
    this.crashes = [];
    this.stalls = [];
    this.shunted = [];
    this.rejectedEdits = 0;
    this.reloads = 0;
    this.allReady = 0;
    this.restarts = 0;
    this.unreachable = 0;
    this.lines = 0;
    this.unparsed = 0;
  }

  line(text) {
    if (!text.startsWith("{")) {
      if (text.trim()) this.unparsed++;
      return;
    }
    let j;
    try {
      j = JSON.parse(text);
    } catch {
      this.unparsed++;
      return;
    }
    this.lines++;
    const msg = j.msg;
    if (msg === "worker exited unexpectedly") {
      const ours = j.signal === "SIGKILL" && this.killedPids.has(j.workerPid);
      if (!ours)
        this.crashes.push({
          runner: j.runner,
          slice: j.slice,
          pid: j.workerPid,
          code: j.code,
          signal: j.signal,
        });
    } else if (msg === "worker failed" || j.level === "fatal") {
      this.crashes.push({ runner: j.runner, slice: j.slice, pid: j.pid, fatal: j.err?.message ?? msg });
    } else if (typeof msg === "string" && msg.startsWith("worker stalled")) {
      this.stalls.push({ runner: j.runner, slice: j.slice, msg });
    } else if (msg === "entry shunted" || msg === "handler failed; entry shunted") {
      if (msg === "entry shunted") this.shunted.push({ queue: j.queue, entry: j.entry, reason: j.reason });
    } else if (msg === "config edit rejected; the old config stays in force" && j.role === "master") {
      this.rejectedEdits++;
    } else if (msg === "config reloaded" && j.role === "master") {
      this.reloads++;
    } else if (msg === "restarting worker after backoff") {
      this.restarts++;
    } else if (msg === "all workers ready") {
      this.allReady++;
    } else if (typeof msg === "string" && msg.startsWith("cannot reach host")) {
      this.unreachable++;
    }
  }
}

/** Start the master; its output (and its workers') goes to `<site>/daemon.log` and to the tally. */
export function startMaster(repo, site, tally, env = {}) {
  const bin = path.join(repo, "bin/qrunner");
  const child = spawn(process.execPath, [bin, "start", "-C", site.configFile], {
    cwd: site.dir,
    env: { ...process.env, QRUNNER_ALLOW_ROOT: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = createWriteStream(path.join(site.dir, "daemon.log"), { flags: "a" });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d.toString();
    log.write(d);
  });
  const rl = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
  rl.on("line", (l) => {
    log.write(l + "\n");
    tally.line(l);
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  // the pipe stays open while orphaned workers write to it; close our end of the log only at exit
  rl.on("close", () => log.end());
  return { child, pid: child.pid, exited, stderr: () => stderr };
}

/** Run a qrunner command to completion. */
export function runCli(repo, args, { input, env = {}, cwd } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, "bin/qrunner"), ...args], {
      cwd: cwd ?? repo,
      env: { ...process.env, QRUNNER_ALLOW_ROOT: "1", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d.toString()));
    child.stderr.on("data", (d) => (err += d.toString()));
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
    child.on("close", (code, signal) => resolve({ code, signal, stdout: out, stderr: err }));
  });
}
