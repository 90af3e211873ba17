/** Shared by the master tests: temp setups, spawning masters, polling for a condition. */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, symlinkSync } from "node:fs";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { MasterStatus } from "../../src/master/status-file.js";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = path.join(REPO, "bin/qrunner");
export const HARNESS = fileURLToPath(new URL("./run-master.js", import.meta.url));

/**
 * The harness as `node DIR/qrunner start CONFIG`: `qrunner stop` and `reload` signal only a process
 * whose command line is a qrunner master's (src/master/master-identity.ts).
 */
export function harnessAsQrunner(dir: string): { file: string; args: string[] } {
  const link = path.join(dir, "qrunner");
  if (!existsSync(link)) symlinkSync(HARNESS, link);
  return { file: link, args: ["start"] };
}

export function requireBuild(): void {
  if (!existsSync(path.join(REPO, "dist/master/master.js")))
    throw new Error("dist/ is missing: run `npx tsc -p tsconfig.build.json` first");
}

export interface Setup {
  dir: string;
  configFile: string;
  stateDir: string;
  listsDir: string;
  eventsFile: string;
  writeConfig(yaml: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** A temp dir with config/qrunner.yaml (qfiles, var and lists beside it). */
export async function makeSetup(yaml: string): Promise<Setup> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-master-"));
  const configFile = path.join(dir, "config/qrunner.yaml");
  const listsDir = path.join(dir, "lists");
  await mkdir(path.dirname(configFile), { recursive: true, mode: 0o750 });
  await mkdir(listsDir, { recursive: true, mode: 0o750 });
  const writeConfig = (text: string) => writeFile(configFile, text, { mode: 0o640 });
  await writeConfig(yaml);
  return {
    dir,
    configFile,
    stateDir: path.join(dir, "var"),
    listsDir,
    eventsFile: path.join(dir, "events.jsonl"),
    writeConfig,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The config head every test shares: paths relative to config/. */
export const BASE = "qfiles: ../qfiles\nstate: ../var\nlists: ../lists\nlog: { level: info }\n";

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function run(file: string, args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, [file, ...args], {
    cwd: REPO,
    env: { ...process.env, QRUNNER_ALLOW_ROOT: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Run a CLI command to completion. */
export async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = run(BIN, args, env);
  const { code } = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

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
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function readStatusFile(stateDir: string): Promise<MasterStatus | null> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, "status.json"), "utf8")) as MasterStatus;
  } catch {
    return null;
  }
}

/** Wait until status.json shows every worker ready (and n workers when given). */
export function waitAllReady(stateDir: string, n?: number, timeoutMs?: number): Promise<MasterStatus> {
  return waitFor(
    "all workers ready",
    async () => {
      const s = await readStatusFile(stateDir);
      if (!s || s.workers.length === 0 || (n !== undefined && s.workers.length !== n)) return null;
      return s.workers.every((w) => w.state === "ready" && w.pid !== null) ? s : null;
    },
    timeoutMs,
  );
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface FakeEvent {
  event: "start" | "hup" | "term" | "disconnect";
  runner: string;
  slice: string;
  pid: number;
}

export async function readEvents(file: string): Promise<FakeEvent[]> {
  try {
    return (await readFile(file, "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as FakeEvent);
  } catch {
    return [];
  }
}

/** Kill whatever a test left running (by pid, never by name). */
export function killAll(pids: Iterable<number | null | undefined>): void {
  for (const pid of pids) {
    if (pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}
