/**
 * Who a pid is, from /proc (Linux): is it alive, when did it start, on which boot, what command line,
 * which files does it hold open. A pid alone names a process only until it exits: after a crash or a
 * power loss the same number may belong to anything, so the master's lock and its search for orphaned
 * workers check a process's identity with these before trusting or killing it. Off Linux every probe
 * answers "cannot tell" (null), and callers fall back to the plain pid.
 */
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import path from "node:path";

/** /proc reports process start times in USER_HZ ticks, 100 per second on every Linux that Node runs on. */
const USER_HZ = 100;

/** Field 22 of /proc/<pid>/stat, and whether the process is a zombie; null off Linux or when gone. */
export function procStat(pid: number): { startTime: string; zombie: boolean } | null {
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

/** This boot's id (a fresh random UUID at every boot); null off Linux. */
export function bootId(): string | null {
  try {
    const id = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    return id === "" ? null : id;
  } catch {
    return null;
  }
}

/** When a process started, in ms since the epoch (to within a second: the boot time is in seconds). */
export function processStartMs(pid: number): number | null {
  const stat = procStat(pid);
  if (stat === null) return null;
  try {
    const line = readFileSync("/proc/stat", "utf8")
      .split("\n")
      .find((l) => l.startsWith("btime "));
    const btime = Number(line?.slice(6));
    if (!Number.isFinite(btime) || btime <= 0) return null;
    return btime * 1000 + (Number(stat.startTime) * 1000) / USER_HZ;
  } catch {
    return null;
  }
}

/** A process's argv; null when it is gone or cannot be read. */
export function cmdline(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
  } catch {
    return null;
  }
}

/** Does this argv run a qrunner master (`qrunner start`, not a worker's `start --runner=...`)? */
export function isMasterCommand(argv: readonly string[]): boolean {
  const script = argv.some(
    (a) => a === "qrunner" || a.endsWith("/qrunner") || a.endsWith("/dist/cli/main.js"),
  );
  return script && argv.includes("start") && !argv.some((a) => a.startsWith("--runner"));
}

/**
 * The paths a process holds open (its /proc/<pid>/fd links), or null when they cannot be read (the
 * process is gone, or belongs to another user and we are not root).
 */
export function openFiles(pid: number): string[] | null {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return null;
  }
  const out: string[] = [];
  for (const fd of fds) {
    try {
      out.push(readlinkSync(path.join(dir, fd)));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Every pid on this host (from /proc), this process left out; empty off Linux. */
export function allPids(): number[] {
  try {
    return readdirSync("/proc")
      .filter((n) => n !== "" && [...n].every((c) => c >= "0" && c <= "9"))
      .map(Number)
      .filter((p) => p !== process.pid);
  } catch {
    return [];
  }
}
