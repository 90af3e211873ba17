/** Shared by the master tests: temp setups, spawning masters, polling for a condition. */
import { existsSync, symlinkSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { MasterStatus } from "../../src/master/status-file.js";
import { killAll, runCli, spawnNode, waitFor, type Running } from "../helpers/process.js";
import type { Scope } from "../helpers/scope.js";
import { CONFIG_HEAD, makeSite } from "../helpers/site.js";

export { BIN, REPO, alive, killAll, requireBuild, stop, waitFor, type Running } from "../helpers/process.js";
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

export interface Setup {
  dir: string;
  configFile: string;
  stateDir: string;
  listsDir: string;
  eventsFile: string;
  writeConfig(yaml: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** A site (test/helpers/site.ts) whose config file is exactly `yaml`, events.jsonl beside it. */
export async function makeSetup(yaml: string): Promise<Setup> {
  const site = await makeSite("", [], "qrunner-master-");
  const writeConfig = (text: string) => writeFile(site.configFile, text, { mode: 0o640 });
  await writeConfig(yaml);
  return {
    dir: site.dir,
    configFile: site.configFile,
    stateDir: site.state,
    listsDir: site.listsDir,
    eventsFile: path.join(site.dir, "events.jsonl"),
    writeConfig,
    cleanup: site.cleanup,
  };
}

/**
 * makeSetup for one test of a scope: after the test (and after the processes started later are
 * stopped) any worker its status file still names is killed, and the folder removed.
 */
export async function scopedSetup(t: Scope, yaml: string): Promise<Setup> {
  const s = await makeSetup(yaml);
  t.defer(async () => {
    killAll((await readStatusFile(s.stateDir))?.workers.map((w) => w.pid) ?? []);
    await s.cleanup();
  });
  return s;
}

/** The config head every test shares: paths relative to config/. */
export const BASE = CONFIG_HEAD;

/** `node FILE ARGS`: the master harness, or the CLI. */
export const run = (file: string, args: string[], env: Record<string, string> = {}): Running =>
  spawnNode(file, args, { env });

/** Run a CLI command to completion. */
export const cli = (args: string[], env: Record<string, string> = {}): ReturnType<typeof runCli> =>
  runCli(args, { env });

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
