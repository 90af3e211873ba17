/**
 * What `stop`, `reload` and `status` need to find and judge a running master. They read the config
 * leniently (only the paths and master.stop_timeout, defaults for the rest) so that a master can be
 * stopped or inspected even after an edit broke the config file.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parse } from "yaml";
import { parseDuration } from "../util/units.js";
import { lockPaths, ownerAlive, readOwner, type LockOwner } from "./owner-record.js";
import { pidAlive } from "./proc.js";
import { readStatus, type MasterStatus } from "./status-file.js";

export interface MasterPaths {
  configFile: string;
  stateDir: string;
  /** the config's `pid_file`, absolute; undefined: <state>/master.pid */
  pidFile: string | undefined;
  qfiles: string;
  stopTimeoutMs: number;
}

function field(doc: unknown, key: string): unknown {
  return typeof doc === "object" && doc !== null ? (doc as Record<string, unknown>)[key] : undefined;
}

/** The state and queue directories a config file names (schema defaults when it does not, or cannot be read). */
export async function locateMaster(configFile: string): Promise<MasterPaths> {
  let doc: unknown = null;
  try {
    doc = parse(await readFile(configFile, "utf8"));
  } catch {
    // missing or not YAML: the defaults still say where a master started with it would keep its state
  }
  const dir = path.dirname(configFile);
  const str = (v: unknown, dflt: string) => path.resolve(dir, typeof v === "string" && v !== "" ? v : dflt);
  const stop = field(field(doc, "master"), "stop_timeout");
  const stopMs = typeof stop === "string" || typeof stop === "number" ? parseDuration(stop) : undefined;
  const pidFile = field(doc, "pid_file");
  return {
    configFile,
    stateDir: str(field(doc, "state"), "../var"),
    pidFile: typeof pidFile === "string" && pidFile !== "" ? path.resolve(dir, pidFile) : undefined,
    qfiles: str(field(doc, "qfiles"), "../qfiles"),
    stopTimeoutMs: stopMs ?? 30_000,
  };
}

export interface MasterProbe {
  /** from the pid file */
  owner: LockOwner | null;
  /** true: running here; false: gone; null: on another host, cannot tell */
  alive: boolean | null;
  /** the lock directory exists */
  locked: boolean;
  /** the last status.json (possibly from a master that is gone) */
  status: MasterStatus | null;
}

export async function probeMaster(stateDir: string, pidFile?: string): Promise<MasterProbe> {
  const owner = await readOwner(stateDir, pidFile);
  const locked = await stat(lockPaths(stateDir).lockDir).then(
    () => true,
    () => false,
  );
  return {
    owner,
    alive: owner ? ownerAlive(owner, stateDir, pidFile) : false,
    locked,
    status: await readStatus(stateDir),
  };
}

/** The worker pids a status.json written by this master lists. */
export function workerPids(probe: MasterProbe): number[] {
  const s = probe.status;
  if (!s || !probe.owner || s.master.pid !== probe.owner.pid) return [];
  return s.workers.map((w) => w.pid).filter((p): p is number => p !== null);
}

/** Wait until none of these pids is alive; false when some still are after timeoutMs. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!pids.some(pidAlive)) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
