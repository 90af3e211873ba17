/**
 * The owner record `<state>/master.pid` (or the config's `pid_file`) of the master lock: pid, hostname,
 * process start time and boot id, one a line. A master keeps it open while it holds the lock, which is
 * how other processes tell a live holder from a gone one: whether the recorded owner is alive, who on
 * this host holds a record (or one being written, `master.pid.<pid>.tmp`) open, and so whether a held
 * lock is certainly free. The lock itself, and writing the record, are in lock.ts.
 */
import { readFile, readdir, rm } from "node:fs/promises";
import { realpathSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { allPids, bootId, cmdline, isMasterCommand, openFiles, pidAlive, procStat } from "./proc.js";

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

export function ownerText(): string {
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
export async function lockTakers(stateDir: string, pidFile?: string): Promise<number[]> {
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

/** Why a lock that is held is free all the same, or null when it is not (certainly) free. */
export function whyFree(owner: LockOwner | null, stateDir: string, pidFile?: string): string | null {
  if (owner === null) return "its owner record is missing, empty or unreadable";
  if (ownerAlive(owner, stateDir, pidFile) !== false) return null;
  const boot = bootId();
  if (owner.bootId !== null && boot !== null && owner.bootId !== boot)
    return "its owner record is from an earlier boot";
  return "its owner is gone";
}
