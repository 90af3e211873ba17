/**
 * The power-loss test, bounded for CI: 5 rounds of `qrunner start` delivering while `qrunner inject`
 * processes post, then SIGKILL of every process and a LazyFS clear-cache (every unsynced byte dropped),
 * then a start at once (powerloss.js). Needs root, /dev/fuse and the LazyFS binary (QRUNNER_LAZYFS, or
 * where `bash ../shared/tools/lazyfs/build.sh` puts it); skipped, saying why, where they are missing.
 * `node test/faults/powerloss.js --rounds=8` runs more rounds.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO } from "../helpers/process.js";
const DRIVER = path.join(REPO, "test/faults/powerloss.js");
// the driver says whether it can run here (exit 0) or why not (exit 3)
const probe = spawnSync(process.execPath, [DRIVER, "--check"], { encoding: "utf8" });
const unavailable =
  probe.status === 0
    ? null
    : probe.stderr.replace("powerloss: skipped: ", "").trim() || `exit ${probe.status}`;
if (unavailable) process.stderr.write(`power-loss test skipped: ${unavailable}\n`);

/** Our processes, should the driver be killed: every one whose command line names the site's config. */
function processesNaming(text: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text)) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

interface Figures {
  powerLosses: number;
  acknowledged: number;
  expected: number;
  delivered: number;
  lost: number;
  corrupt: number;
  duplicates: number;
  duplicatesRedelivered: number;
  duplicatesResurrected: number;
  duplicatesWithoutPowerLoss: number;
  starts: number[];
  lockMs: number[];
  refusedStarts: number;
  bad: number;
  pending: number;
  failures: string[];
}

let driver: ChildProcess | null = null;
let stderr = "";

afterAll(async () => {
  // should the driver be stopped halfway (a timeout), nothing of it may stay: its daemon, its mount
  if (driver && driver.exitCode === null && driver.signalCode === null) {
    const gone = new Promise((r) => driver!.once("exit", r));
    driver.kill("SIGTERM"); // the driver kills its processes and unmounts on SIGTERM
    const t = setTimeout(() => driver!.kill("SIGKILL"), 15_000);
    await gone;
    clearTimeout(t);
  }
  const mnt = /mounted at (\S+)/.exec(stderr)?.[1];
  if (mnt && readFileSync("/proc/mounts", "utf8").includes(` ${mnt} `)) {
    const config = /site config (\S+)/.exec(stderr)?.[1];
    for (const pid of config ? processesNaming(config) : []) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    spawnSync("fusermount3", ["-u", "-z", mnt]);
  }
  const lazyfsPid = Number(/LazyFS pid (\d+)/.exec(stderr)?.[1]);
  if (lazyfsPid > 0) {
    try {
      process.kill(lazyfsPid, "SIGKILL");
    } catch {
      // gone
    }
  }
}, 60_000);

describe.skipIf(unavailable !== null)("power loss (LazyFS)", () => {
  it("loses no acknowledged post, corrupts none, resurrects none, and starts at once after each power loss", async () => {
    if (!existsSync(path.join(REPO, "dist/cli/main.js")))
      throw new Error("dist/ is missing: run `npm run build` first");
    const r = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [DRIVER, "--rounds=5", "--json"], {
        cwd: REPO,
      });
      driver = child;
      let stdout = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("close", (code) => resolve({ code, stdout }));
    });
    const line = r.stdout.trim().split("\n").at(-1) ?? "";
    expect(line.startsWith("{"), stderr).toBe(true);
    const f = JSON.parse(line) as Figures;
    expect(f.failures, stderr).toEqual([]);
    expect(r.code, stderr).toBe(0);
    expect(f.powerLosses).toBe(5);
    expect(f.acknowledged).toBeGreaterThan(0);
    expect(f.delivered).toBe(f.expected);
    expect({ lost: f.lost, corrupt: f.corrupt, bad: f.bad, pending: f.pending }).toEqual({
      lost: 0,
      corrupt: 0,
      bad: 0,
      pending: 0,
    });
    expect(f.duplicatesResurrected + f.duplicatesWithoutPowerLoss).toBe(0);
    // every start after a power loss took the dead master's lock: none was refused
    expect(f.refusedStarts).toBe(0);
    expect(f.starts).toHaveLength(6);
    expect(Math.max(...f.lockMs)).toBeLessThanOrEqual(3000);
  }, 600_000);
});
