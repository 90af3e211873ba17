import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { waitForOrphans } from "../../src/master/orphans.js";
import { bootId } from "../../src/master/proc.js";
import { writeStatus, type MasterStatus, type WorkerStatus } from "../../src/master/status-file.js";
import { silentLogger } from "../../src/util/log.js";
import { testScope } from "../helpers/scope.js";
import { tempDir } from "../helpers/tmp.js";

const t = testScope({ build: false });
const log = silentLogger();
let dir: string;
beforeEach(async () => {
  dir = t.own(await tempDir("qrunner-orphans-")).dir;
});

/** A process whose command line is a worker's of `configFile`; it ignores SIGTERM, as a busy one would. */
async function fakeWorker(configFile: string): Promise<{ child: ChildProcess; spawnedAt: number }> {
  const spawnedAt = Date.now();
  const child = spawn(
    process.execPath,
    ["-e", "setInterval(() => {}, 60000)", "start", "--runner=outgoing", "--slice=0/1", "-C", configFile],
    { stdio: "ignore" },
  );
  t.stopAfter(child, "SIGKILL");
  for (let i = 0; i < 250; i++) {
    const argv = (() => {
      try {
        return readFileSync(`/proc/${child.pid}/cmdline`, "utf8");
      } catch {
        return "";
      }
    })();
    if (argv.includes("--runner=outgoing")) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, spawnedAt };
}

async function oldStatus(
  boot: string | null,
  workers: Array<{ pid: number; startedAt: number }>,
): Promise<void> {
  const status: MasterStatus = {
    format: 1,
    updatedAt: Date.now(),
    master: { pid: 1, host: os.hostname(), bootId: boot, state: "running", startedAt: 0, readyMs: 1, rss: 0 },
    config: { file: "x", version: "v", loadedAt: 0 },
    rejectedEdit: null,
    reload: { count: 0, at: null, why: null, ok: null },
    workers: workers.map((w): WorkerStatus => ({
      key: "outgoing 0/1",
      runner: "outgoing",
      slice: "0/1",
      pid: w.pid,
      state: "ready",
      restarts: 0,
      handled: 0,
      failed: 0,
      due: 0,
      inHand: 0,
      lastError: null,
      sinceProgress: null,
      waiting: null,
      startedAt: w.startedAt,
      nextStartAt: null,
    })),
  };
  await writeStatus(dir, status);
}

const exited = (c: ChildProcess) => new Promise((r) => c.once("exit", (_code, signal) => r(signal)));

describe("waitForOrphans", () => {
  it("waits for a worker of the dead master, then kills it", async () => {
    const config = path.join(dir, "qrunner.yaml");
    const w = await fakeWorker(config);
    await oldStatus(bootId(), [{ pid: w.child.pid!, startedAt: w.spawnedAt }]);
    const gone = exited(w.child);
    expect(await waitForOrphans(dir, config, 300, log)).toBe(1);
    expect(await gone).toBe("SIGKILL");
  });

  it("leaves alone a pid of a status from another boot (after a power loss the pids name other processes)", async () => {
    const config = path.join(dir, "qrunner.yaml");
    const w = await fakeWorker(config);
    await oldStatus("00000000-0000-4000-8000-000000000000", [{ pid: w.child.pid!, startedAt: w.spawnedAt }]);
    expect(await waitForOrphans(dir, config, 300, log)).toBe(0);
    expect(w.child.exitCode === null && w.child.signalCode === null).toBe(true);
  });

  it("leaves alone a worker of this config that started at another time than the one recorded", async () => {
    const config = path.join(dir, "qrunner.yaml");
    const w = await fakeWorker(config);
    await oldStatus(bootId(), [{ pid: w.child.pid!, startedAt: w.spawnedAt - 3_600_000 }]);
    expect(await waitForOrphans(dir, config, 300, log)).toBe(0);
    expect(w.child.exitCode === null && w.child.signalCode === null).toBe(true);
  });

  it("leaves alone a process of another config, and finds nothing without a status", async () => {
    const w = await fakeWorker(path.join(dir, "other.yaml"));
    await oldStatus(bootId(), [{ pid: w.child.pid!, startedAt: w.spawnedAt }]);
    expect(await waitForOrphans(dir, path.join(dir, "qrunner.yaml"), 300, log)).toBe(0);
    await rm(path.join(dir, "status.json"));
    expect(await waitForOrphans(dir, path.join(dir, "qrunner.yaml"), 300, log)).toBe(0);
    expect(w.child.exitCode === null && w.child.signalCode === null).toBe(true);
  });
});
