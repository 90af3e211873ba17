/**
 * Real processes for tests: where the repo and its CLI are, spawning node scripts (the CLI, the master
 * harness, stand-in workers) with their output collected, polling for a condition, and asking whether
 * a pid is still running. One of each, shared by every test folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = path.join(REPO, "bin/qrunner");

/** Many tests run dist/ (the CLI and the worker processes it starts): say so plainly when it is missing. */
export function requireBuild(): void {
  if (
    !existsSync(path.join(REPO, "dist/cli/main.js")) ||
    !existsSync(path.join(REPO, "dist/master/master.js"))
  )
    throw new Error("dist/ is missing: run `npm run build` first");
}

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** resolves when the process exited and its stdout and stderr are closed */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /** written to stdin, which is then closed (default: empty) */
  input?: Buffer | string;
  env?: Record<string, string>;
}

/** Start `node FILE ARGS` in the repo (as root it passes QRUNNER_ALLOW_ROOT=1). */
export function spawnNode(file: string, args: string[], opts: SpawnOptions = {}): Running {
  const child = spawn(process.execPath, [file, ...args], {
    cwd: REPO,
    env: { ...process.env, QRUNNER_ALLOW_ROOT: "1", ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  child.stdin?.on("error", () => undefined);
  child.stdin?.end(opts.input ?? "");
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Start `qrunner ARGS`. */
export function spawnCli(args: string[], opts: SpawnOptions = {}): Running {
  return spawnNode(BIN, args, opts);
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node FILE ARGS` to completion. */
export async function runNode(file: string, args: string[], opts: SpawnOptions = {}): Promise<Ran> {
  const r = spawnNode(file, args, opts);
  const { code } = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** Run `qrunner ARGS` to completion. */
export const runCli = (args: string[], opts: SpawnOptions = {}): Promise<Ran> => runNode(BIN, args, opts);

/**
 * Signal a process a test started unless it has exited, and wait for its exit. It waits for "exit",
 * not for `exited`: workers the process leaves behind may hold its stdout open.
 */
export async function stop(p: Running | ChildProcess, sig: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const child = "child" in p ? p.child : p;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once("exit", resolve));
  child.kill(sig);
  await gone;
}

/**
 * Poll `probe` every 50 ms until it gives something other than undefined, null or false, and return
 * that; fail after `timeoutMs` saying what was awaited.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Is this process running? EPERM counts as running: the pid exists and belongs to another user (a
 * worker that dropped privileges). A zombie (exited, not reaped yet by a stopped or busy parent) does
 * not: it does no more work and holds nothing.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) S ...", the state after the last ')'
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/** Send a signal to a pid unless it is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** Kill whatever a test left running (by pid, never by name). */
export function killAll(pids: Iterable<number | null | undefined>): void {
  for (const pid of pids) if (pid) signal(pid, "SIGKILL");
}
