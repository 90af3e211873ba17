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
 * and, when the record names no one, none holds the record open (every /proc/<pid>/fd read): those
 * judgements of the record are in owner-record.ts. The record is written durably (fsync of the file,
 * rename, fsync of the directory) so that a power loss leaves either no record or a whole one.
 */
import { open, rename, rm, mkdir, stat, unlink, type FileHandle } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import lockfile from "proper-lockfile";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";
import { fsyncDir } from "../util/dirsync.js";
import { LockError, MasterRunningError } from "./errors.js";
import { lockHolders, lockPaths, lockTakers, ownerText, readOwner, whyFree } from "./owner-record.js";

/** A lock whose mtime has not been refreshed for this long is stale (owner hung, or on another host). */
const STALE_MS = 30_000;
const UPDATE_MS = 5_000;
/** How often a start looks again at a lock another process is taking, and how many times. */
const RETRY_MS = 200;
const ATTEMPTS = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
