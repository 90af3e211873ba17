/**
 * One master per state directory: a proper-lockfile lock on `<state>/master` (the lock directory is
 * `<state>/master.lock`, its mtime refreshed while we run) and an owner record `<state>/master.pid`
 * (pid, hostname, process start time, boot id, one a line), which the master keeps open while it
 * holds the lock.
 *
 * proper-lockfile only calls a lock stale once its mtime is old, which takes `stale` ms after a
 * SIGKILL or a power loss. The owner record lets the next master take over at once when the lock is
 * certainly free: the record is from another boot, or its process is gone (or the pid now names
 * another process: other start time, or a process that neither holds the record open nor runs
 * `qrunner start`), or the record is missing, empty or unreadable. In every case the lock is taken
 * over only when no other process on this host is taking it (holds its `master.pid.<pid>.tmp` open)
 * and, when the record names no one, none holds the record open (every /proc/<pid>/fd read). The record is written durably (fsync of the file, rename, fsync of
 * the directory) so that a power loss leaves either no record or a whole one.
 */
import { open, readFile, readdir, rename, rm, mkdir, stat, unlink, type FileHandle } from "node:fs/promises";
import { realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import lockfile from "proper-lockfile";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";
import { fsyncDir } from "../util/dirsync.js";
import { LockError, MasterRunningError } from "./errors.js";
import { allPids, bootId, cmdline, isMasterCommand, openFiles, pidAlive, procStat } from "./proc.js";

export { pidAlive } from "./proc.js";

/** A lock whose mtime has not been refreshed for this long is stale (owner hung, or on another host). */
const STALE_MS = 30_000;
const UPDATE_MS = 5_000;
/** How often a start looks again at a lock another process is taking, and how many times. */
const RETRY_MS = 200;
const ATTEMPTS = 10;

export interface LockOwner {
  pid: number;
  host: string;
  /** the process's start time in clock ticks since boot (Linux), to tell a reused pid apart */
  startTime: string | null;
  /** /proc/sys/kernel/random/boot_id when the record was written; null in records of earlier versions */
  bootId: string | null;
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

const digits = (s: string) => s !== "" && [...s].every((c) => c >= "0" && c <= "9");
const printable = (s: string) => [...s].every((c) => c > " " && c !== "\x7f");

/** The owner record's text, or null when it is not a whole record (empty, cut short, garbage). */
export function parseOwner(text: string): LockOwner | null {
  const [pidLine = "", host = "", startTime = "", boot = ""] = text.split("\n");
  const pid = Number(pidLine);
  if (!digits(pidLine) || !Number.isSafeInteger(pid) || pid <= 0) return null;
  if (host === "" || !printable(host)) return null;
  if (startTime !== "" && !digits(startTime)) return null;
  if (boot !== "" && !printable(boot)) return null;
  return { pid, host, startTime: startTime || null, bootId: boot || null };
}

function ownerText(): string {
  return `${process.pid}\n${os.hostname()}\n${procStat(process.pid)?.startTime ?? ""}\n${bootId() ?? ""}\n`;
}

/** The owner record, or null when there is none or it is not whole. */
export async function readOwner(stateDir: string, pidFile?: string): Promise<LockOwner | null> {
  try {
    return parseOwner(await readFile(lockPaths(stateDir, pidFile).pidFile, "utf8"));
  } catch {
    return null;
  }
}

/** Where the owner record lives, its directory resolved as /proc/<pid>/fd links show it. */
interface RecordPlace {
  dir: string;
  base: string;
}

function recordPlace(stateDir: string, pidFile?: string): RecordPlace {
  const file = lockPaths(stateDir, pidFile).pidFile;
  const dir = path.dirname(file);
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    real = path.resolve(dir);
  }
  return { dir: real, base: path.basename(file) };
}

/** Is `file` (an /proc/<pid>/fd link) the owner record of this state directory, or a record being written? */
function recordKind(file: string, place: RecordPlace): "record" | "writing" | null {
  if (path.dirname(file) !== place.dir) return null;
  const base = path.basename(file);
  if (base === place.base) return "record";
  return base.startsWith(`${place.base}.`) && base.endsWith(".tmp") ? "writing" : null;
}

/**
 * Is the owner recorded in a pid file still running and holding the lock? null when it ran on another
 * host (we cannot tell); false when the record is from another boot, its pid is gone, or the pid now
 * names another process (other start time, or one that neither holds the record open, as a master
 * does, nor runs `qrunner start`, as a master of an earlier version does).
 */
export function ownerAlive(owner: LockOwner, stateDir: string, pidFile?: string): boolean | null {
  if (owner.host !== os.hostname()) return null;
  const boot = bootId();
  if (owner.bootId !== null && boot !== null && owner.bootId !== boot) return false;
  if (!pidAlive(owner.pid)) return false;
  if (owner.startTime !== null) {
    const now = procStat(owner.pid);
    if (now !== null && now.startTime !== owner.startTime) return false;
  }
  const place = recordPlace(stateDir, pidFile);
  if (openFiles(owner.pid)?.some((f) => recordKind(f, place) === "record")) return true;
  const argv = cmdline(owner.pid);
  return argv === null || isMasterCommand(argv);
}

/**
 * The other processes on this host that hold this state directory's owner record open (a running
 * master), that hold a record being written open (a master taking the lock), and the qrunner masters
 * whose open files we may not read (another user's, when we are not root): any of them may hold it.
 * Reads every process's /proc/<pid>/fd: used only when the record names no one.
 */
export function lockHolders(
  stateDir: string,
  pidFile?: string,
): { holding: number[]; taking: number[]; unknown: number[] } {
  const place = recordPlace(stateDir, pidFile);
  const out = { holding: [] as number[], taking: [] as number[], unknown: [] as number[] };
  for (const pid of allPids()) {
    const files = openFiles(pid);
    if (files === null) {
      const argv = cmdline(pid);
      if (argv !== null && isMasterCommand(argv) && pidAlive(pid)) out.unknown.push(pid);
      continue;
    }
    const kinds = new Set(files.map((f) => recordKind(f, place)));
    if (kinds.has("record")) out.holding.push(pid);
    else if (kinds.has("writing")) out.taking.push(pid);
  }
  return out;
}

/**
 * The processes taking the lock now, found by their records being written (`master.pid.<pid>.tmp`,
 * open in that pid): cheaper than lockHolders, and enough when the record names its (gone) owner,
 * since any other holder has renamed its record over it. Leftovers of takers that died are removed.
 */
async function lockTakers(stateDir: string, pidFile?: string): Promise<number[]> {
  const place = recordPlace(stateDir, pidFile);
  const where = path.dirname(lockPaths(stateDir, pidFile).pidFile);
  const takers: number[] = [];
  const names = await readdir(where).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(`${place.base}.`) || !name.endsWith(".tmp")) continue;
    const pid = Number(name.slice(place.base.length + 1, -".tmp".length));
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) continue;
    const files = pidAlive(pid) ? openFiles(pid) : [];
    if (files === null || files.includes(path.join(place.dir, name))) takers.push(pid);
    else await rm(path.join(where, name), { force: true });
  }
  return takers;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why a lock that is held is free all the same, or null when it is not (certainly) free. */
function whyFree(owner: LockOwner | null, stateDir: string, pidFile?: string): string | null {
  if (owner === null) return "its owner record is missing, empty or unreadable";
  if (ownerAlive(owner, stateDir, pidFile) !== false) return null;
  const boot = bootId();
  if (owner.bootId !== null && boot !== null && owner.bootId !== boot)
    return "its owner record is from an earlier boot";
  return "its owner is gone";
}

export class MasterLock {
  private released = false;
  private constructor(
    private readonly stateDir: string,
    private readonly releaseLock: () => Promise<void>,
    /** the owner record, open while we hold the lock: this is what tells other processes we do */
    private readonly record: FileHandle,
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
    const tmp = `${pidFile}.${process.pid}.tmp`;
    for (let attempt = 1; ; attempt++) {
      // open before locking: while we take the lock, others see this file open and leave the lock be
      let record: FileHandle;
      try {
        record = await open(tmp, "w", 0o644);
      } catch (err) {
        throw new LockError(`cannot write ${tmp}: ${describeError(err)}`, { cause: err });
      }
      let release: () => Promise<void>;
      try {
        release = await lockfile.lock(target, {
          realpath: false,
          lockfilePath: lockDir,
          stale: STALE_MS,
          update: UPDATE_MS,
          onCompromised: (err) =>
            // another process removed or took our lock: say so loudly, keep running (the workers are fine)
            logger.error({ err: describeError(err), lock: lockDir }, "master lock compromised"),
        });
      } catch (err) {
        await record.close().catch(() => undefined);
        await rm(tmp, { force: true });
        if ((err as NodeJS.ErrnoException).code !== "ELOCKED")
          throw new LockError(`cannot lock ${lockDir}: ${describeError(err)}`, { cause: err });
        await MasterLock.judge(stateDir, pidFilePath, attempt, logger, err);
        continue;
      }
      try {
        await record.writeFile(ownerText());
        await record.sync();
        await rename(tmp, pidFile);
        await fsyncDir(path.dirname(pidFile));
      } catch (err) {
        await record.close().catch(() => undefined);
        await rm(tmp, { force: true });
        await release().catch(() => undefined);
        throw new LockError(`cannot write the owner record ${pidFile}: ${describeError(err)}`, {
          cause: err,
        });
      }
      return new MasterLock(stateDir, release, record, pidFilePath);
    }
  }

  /**
   * The lock is held: throw MasterRunningError when its owner may be alive, wait a moment when another
   * process is taking it, or remove it when it is certainly free (the caller then takes it).
   */
  private static async judge(
    stateDir: string,
    pidFilePath: string | undefined,
    attempt: number,
    logger: Logger,
    cause: unknown,
  ): Promise<void> {
    const { lockDir, pidFile } = lockPaths(stateDir, pidFilePath);
    const owner = await readOwner(stateDir, pidFilePath);
    const free = whyFree(owner, stateDir, pidFilePath);
    if (free === null)
      throw new MasterRunningError(stateDir, owner?.pid ?? null, owner?.host ?? null, { cause });
    let busy: number[];
    if (owner === null) {
      // a record that names no one: look for its holder among every process on this host
      const others = lockHolders(stateDir, pidFilePath);
      const holder = others.holding[0];
      if (holder !== undefined) throw new MasterRunningError(stateDir, holder, os.hostname(), { cause });
      busy = [...others.taking, ...others.unknown];
    } else {
      busy = await lockTakers(stateDir, pidFilePath);
      // a taker that renamed its record over the one we judged: look again
      const now = await readOwner(stateDir, pidFilePath);
      if (now?.pid !== owner.pid || now.startTime !== owner.startTime || now.bootId !== owner.bootId)
        busy.push(now?.pid ?? owner.pid);
    }
    // still held after this many looks: someone keeps taking it, let the operator look
    if (attempt >= ATTEMPTS) {
      const pid = busy[0] ?? null;
      throw new MasterRunningError(stateDir, pid, pid === null ? null : os.hostname(), { cause });
    }
    if (busy.length > 0) {
      // a master between creating the lock directory and writing its record: give it a moment
      await sleep(RETRY_MS);
      return;
    }
    logger.warn(
      { ownerPid: owner?.pid ?? null, ownerHost: owner?.host ?? null, reason: free },
      "taking over the lock of a master that is gone",
    );
    await rm(lockDir, { recursive: true, force: true });
    await rm(pidFile, { force: true });
  }

  /** Release the lock, then remove the owner record (if still ours). Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    // the lock first: while the record is ours and open, no one takes the lock over from under us
    await this.releaseLock().catch(() => undefined);
    const pidFile = lockPaths(this.stateDir, this.pidFilePath).pidFile;
    const [ours, now] = await Promise.all([
      this.record.stat().catch(() => null),
      stat(pidFile).catch(() => null),
    ]);
    if (ours !== null && now !== null && ours.ino === now.ino && ours.dev === now.dev)
      await unlink(pidFile).catch(() => undefined);
    await this.record.close().catch(() => undefined);
  }
}
