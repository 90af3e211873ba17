/**
 * Workers of a master that died (SIGKILL, OOM) notice the closed IPC channel and stop after the entry
 * in hand. A new master must not start its own workers before they are gone: the new workers' recovery
 * would take back entries the old ones are still delivering, and both would deliver them. The old
 * master's status file names their pids. A pid names that worker only while it runs: after a reboot
 * (the status is from another boot) none of them can still run, and otherwise each pid is checked to
 * still be a qrunner worker of this config that started when the old master spawned it (so a reused
 * pid is left alone), waited for up to `timeoutMs`, then killed.
 */
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { bootId, processStartMs } from "./proc.js";
import { readStatus, type WorkerStatus } from "./status-file.js";

/** How far a process's start may lie from the spawn time the master recorded (/proc has it to a second). */
const SPAWN_SLACK_MS = 5_000;

async function isOurWorker(pid: number, configFile: string): Promise<boolean> {
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    return argv.some((a) => a.startsWith("--runner")) && argv.includes(configFile);
  } catch {
    return false;
  }
}

/** Did this process start when the old master spawned the worker (true when either time is unknown)? */
function startedAsRecorded(pid: number, worker: WorkerStatus): boolean {
  const started = processStartMs(pid);
  if (started === null || worker.startedAt === null) return true;
  return Math.abs(started - worker.startedAt) <= SPAWN_SLACK_MS;
}

/** Wait for the workers a dead master left running; returns how many there were. */
export async function waitForOrphans(
  stateDir: string,
  configFile: string,
  timeoutMs: number,
  logger: Logger,
): Promise<number> {
  const old = await readStatus(stateDir).catch(() => null);
  if (old === null) return 0;
  const boot = bootId();
  if (old.master.bootId && boot !== null && old.master.bootId !== boot) return 0;
  const workers = old.workers.filter((w) => w.pid !== null && w.pid !== process.pid);
  let alive: number[] = [];
  for (const w of workers)
    if (w.pid !== null && startedAsRecorded(w.pid, w) && (await isOurWorker(w.pid, configFile)))
      alive.push(w.pid);
  if (alive.length === 0) return 0;
  logger.warn({ pids: alive }, "workers of the previous master still finish their entries; waiting for them");
  const end = Date.now() + timeoutMs;
  while (alive.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    const still: number[] = [];
    for (const p of alive) if (await isOurWorker(p, configFile)) still.push(p);
    alive = still;
  }
  for (const p of alive) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  if (alive.length)
    logger.warn({ pids: alive }, "killed workers of the previous master that did not stop in time");
  return workers.length;
}
