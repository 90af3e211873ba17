/**
 * One master per state directory: a proper-lockfile lock on `<state>/master` (the lock directory is
 * `<state>/master.lock`, its mtime refreshed while we run) and a pid file `<state>/master.pid`
 * (pid, hostname, process start time, one a line).
 *
 * proper-lockfile only calls a lock stale once its mtime is old, which takes `stale` ms after a
 * SIGKILL. The pid file lets the next master take over at once: when the owner was on this host and
 * its process is gone (or the pid now belongs to another process), the lock is removed and retaken.
 */
import { readFile, writeFile, rename, rm, mkdir, unlink } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import lockfile from "proper-lockfile";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";
import { LockError, MasterRunningError } from "./errors.js";

/** A lock whose mtime has not been refreshed for this long is stale (owner hung, or on another host). */
const STALE_MS = 30_000;
const UPDATE_MS = 5_000;

export interface LockOwner {
  pid: number;
  host: string;
  /** the process's start time in clock ticks since boot (Linux), to tell a reused pid apart */
  startTime: string | null;
}

/** `pidFile`: the config's `pid_file` when it has one (e.g. in systemd's RuntimeDirectory). */
export function lockPaths(
  stateDir: string,
  pidFile?: string,
): { target: string; lockDir: string; pidFile: string } {
  return {
    target: path.join(stateDir, "master"),
    lockDir: path.join(stateDir, "master.lock"),
    pidFile: pidFile ?? path.join(stateDir, "master.pid"),
  };
}

/** Field 22 of /proc/<pid>/stat, and whether the process is a zombie; null off Linux or when gone. */
function procStat(pid: number): { startTime: string; zombie: boolean } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const startTime = rest[19];
    if (startTime === undefined) return null;
    return { startTime, zombie: rest[0] === "Z" };
  } catch {
    return null;
  }
}

/** Is this pid a live process on this host (signal 0; a zombie counts as gone)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  return procStat(pid)?.zombie !== true;
}

/**
 * Is the owner recorded in a pid file still running? null when it ran on another host (we cannot
 * tell); false when its pid is gone or was reused by a process that started at another time.
 */
export function ownerAlive(owner: LockOwner): boolean | null {
  if (owner.host !== os.hostname()) return null;
  if (!pidAlive(owner.pid)) return false;
  if (owner.startTime !== null) {
    const now = procStat(owner.pid);
    if (now !== null && now.startTime !== owner.startTime) return false;
  }
  return true;
}

export async function readOwner(stateDir: string, pidFile?: string): Promise<LockOwner | null> {
  let text: string;
  try {
    text = await readFile(lockPaths(stateDir, pidFile).pidFile, "utf8");
  } catch {
    return null;
  }
  const [pidLine, host, startTime] = text.split("\n");
  const pid = Number(pidLine);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, host: host ?? "", startTime: startTime ? startTime : null };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class MasterLock {
  private released = false;
  private constructor(
    private readonly stateDir: string,
    private readonly releaseLock: () => Promise<void>,
    private readonly pidFilePath?: string,
  ) {}

  /** Take the lock or throw MasterRunningError naming the owner (LockError for anything else). */
  static async acquire(stateDir: string, logger: Logger, pidFilePath?: string): Promise<MasterLock> {
    const { target, lockDir, pidFile } = lockPaths(stateDir, pidFilePath);
    try {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new LockError(`cannot create the state directory ${stateDir}: ${describeError(err)}`, {
        cause: err,
      });
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const release = await lockfile.lock(target, {
          realpath: false,
          lockfilePath: lockDir,
          stale: STALE_MS,
          update: UPDATE_MS,
          onCompromised: (err) =>
            // another process removed or took our lock: say so loudly, keep running (the workers are fine)
            logger.error({ err: describeError(err), lock: lockDir }, "master lock compromised"),
        });
        const self = procStat(process.pid);
        const tmp = `${pidFile}.${process.pid}.tmp`;
        await writeFile(tmp, `${process.pid}\n${os.hostname()}\n${self?.startTime ?? ""}\n`, { mode: 0o644 });
        await rename(tmp, pidFile);
        return new MasterLock(stateDir, release, pidFilePath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ELOCKED")
          throw new LockError(`cannot lock ${lockDir}: ${describeError(err)}`, { cause: err });
        const owner = await readOwner(stateDir, pidFilePath);
        if (owner === null) {
          // a master between taking the lock and writing its pid file: give it a moment
          if (attempt < 10) {
            await sleep(200);
            continue;
          }
          throw new MasterRunningError(stateDir, null, null, { cause: err });
        }
        if (ownerAlive(owner) === false && attempt < 10) {
          logger.warn(
            { ownerPid: owner.pid, ownerHost: owner.host },
            "taking over the lock of a master that is gone",
          );
          await rm(lockDir, { recursive: true, force: true });
          await rm(pidFile, { force: true });
          continue;
        }
        throw new MasterRunningError(stateDir, owner.pid, owner.host, { cause: err });
      }
    }
  }

  /** Remove the pid file (if still ours), then release the lock. Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const owner = await readOwner(this.stateDir, this.pidFilePath);
    if (owner?.pid === process.pid)
      await unlink(lockPaths(this.stateDir, this.pidFilePath).pidFile).catch(() => undefined);
    await this.releaseLock().catch(() => undefined);
  }
}
