/**
 * Workers of a master that died (SIGKILL, OOM) notice the closed IPC channel and stop after the entry
 * in hand. A new master must not start its own workers before they are gone: the new workers' recovery
 * would take back entries the old ones are still delivering, and both would deliver them. The old
 * master's status file names their pids; each is checked to still be a qrunner worker of this config
 * (so a reused pid is left alone), waited for up to `timeoutMs`, then killed.
 */
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { readStatus } from "./status-file.js";

async function isOurWorker(pid: number, configFile: string): Promise<boolean> {
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    return argv.some((a) => a.startsWith("--runner")) && argv.includes(configFile);
  } catch {
    return false;
  }
}

/** Wait for the workers a dead master left running; returns how many there were. */
export async function waitForOrphans(
  stateDir: string,
  configFile: string,
  timeoutMs: number,
  logger: Logger,
): Promise<number> {
  const old = await readStatus(stateDir).catch(() => null);
  const pids = (old?.workers ?? [])
    .flatMap((w) => (w.pid !== null ? [w.pid] : []))
    .filter((p) => p !== process.pid);
  let alive: number[] = [];
  for (const p of pids) if (await isOurWorker(p, configFile)) alive.push(p);
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
  return pids.length;
}
