/**
 * Before `qrunner stop` or `reload` signals the pid a pid file names, check that the pid is the qrunner
 * master the file describes. The file lives where the daemon's user can write; run as root, the
 * commands would otherwise SIGTERM whatever process a compromised daemon (or a pid reused after a
 * crash) put there. The process must:
 *   - run `qrunner start` (its /proc/PID/cmdline: a `qrunner` script or dist/cli/main.js followed by
 *     `start`), and not as a worker (`--runner` / `--instance`);
 *   - have started at the time the pid file records (field 22 of /proc/PID/stat), so a reused pid fails;
 *   - belong to the user who owns the pid file (a daemon cannot name another user's qrunner).
 * Linux only (/proc); elsewhere nothing can be checked and nothing is signalled.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { QrunnerError } from "../util/errors.js";
import type { LockOwner } from "./owner-record.js";

/** The pid a pid file names is not a qrunner master that file describes: it is not signalled. */
export class NotAMasterError extends QrunnerError {
  readonly pid: number;
  constructor(pid: number, pidFile: string, reason: string, options?: { cause?: unknown }) {
    super(
      "ENOT_MASTER",
      `refusing to signal pid ${pid}: ${reason}. ${pidFile} does not describe a running qrunner master; ` +
        `if no master runs, remove it (the next \`qrunner start\` writes a new one)`,
      options,
    );
    this.pid = pid;
  }
}

/** The arguments of a process (NUL-separated in /proc/PID/cmdline). */
async function commandLine(pid: number): Promise<string[]> {
  const raw = await readFile(`/proc/${pid}/cmdline`, "utf8");
  return raw.split("\0").filter((a, i, all) => a !== "" || i < all.length - 1);
}

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot. */
async function startTime(pid: number): Promise<string | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, "utf8");
  // the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
  return text.slice(text.lastIndexOf(")") + 2).split(" ")[19];
}

const isScript = (arg: string): boolean => {
  const base = path.basename(arg);
  return (
    base === "qrunner" ||
    base === "qrunner.js" ||
    arg.endsWith(`${path.sep}dist${path.sep}cli${path.sep}main.js`)
  );
};

/** Why these arguments are not a qrunner master's; undefined when they are. */
export function notMasterArgs(args: readonly string[]): string | undefined {
  const script = args.findIndex(isScript);
  if (script < 0 || args[script + 1] !== "start")
    return `its command line is not \`qrunner start\` (${JSON.stringify(args.slice(0, 4).join(" "))})`;
  const rest = args.slice(script + 2);
  if (
    rest.some(
      (a) =>
        a === "--runner" || a.startsWith("--runner=") || a === "--instance" || a.startsWith("--instance="),
    )
  )
    return "it is a qrunner worker (`start --runner`), not the master";
  return undefined;
}

/**
 * Resolve when `owner.pid` is the master `pidFile` describes; throw NotAMasterError (saying why)
 * otherwise. Call it just before signalling.
 */
export async function verifyMaster(owner: LockOwner, pidFile: string): Promise<void> {
  const { pid } = owner;
  const refuse = (reason: string, cause?: unknown): never => {
    throw new NotAMasterError(pid, pidFile, reason, cause === undefined ? undefined : { cause });
  };
  let args: string[];
  let started: string | undefined;
  let procOwner: number;
  let fileOwner: number;
  try {
    [args, started, procOwner, fileOwner] = await Promise.all([
      commandLine(pid),
      startTime(pid),
      stat(`/proc/${pid}`).then((s) => s.uid),
      stat(pidFile).then((s) => s.uid),
    ]);
  } catch (err) {
    return refuse(
      `cannot read what process ${pid} is (${(err as NodeJS.ErrnoException).code ?? String(err)}; /proc is needed to check it)`,
      err,
    );
  }
  const why = notMasterArgs(args);
  if (why !== undefined) refuse(why);
  if (owner.startTime === null) refuse("the pid file records no start time to check the process against");
  if (started !== owner.startTime)
    refuse(
      `it started at tick ${started ?? "?"}, the pid file says ${owner.startTime ?? "?"} (the pid was reused)`,
    );
  if (procOwner !== fileOwner)
    refuse(`it runs as uid ${procOwner}, the pid file belongs to uid ${fileOwner}`);
}
