/**
 * `qrunner status`: the master and its workers (from status.json and pid liveness), every queue's
 * depth and oldest entry, every SMTP host's health. Exit 0 master running, 1 none, 2 only a stale
 * lock or pid file left.
 */
import type { Command } from "commander";
import type { StatusReport as Report } from "../master/render.js";
import { configPath, Exit, setExit, withConfigOption, type GlobalOptions } from "./context.js";

interface StatusOptions extends GlobalOptions {
  json?: boolean;
}

/** Exit code when no master runs but its lock or pid file is left behind. */
const STALE = 2;
/** A status.json this fresh means the master (on another host) still runs. */
const FRESH_MS = 10_000;

export function register(program: Command): void {
  withConfigOption(
    program
      .command("status")
      .description("master, workers, queues and SMTP hosts; exit 0 master running, 1 none, 2 stale lock left")
      .option("--json", "one JSON document (stable keys) instead of tables"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  qrunner status\n  qrunner status --json | jq '.workers[] | select(.state != \"ready\")'",
    )
    .action(async (opts: StatusOptions) => setExit(await status(opts)));
}

async function status(opts: StatusOptions): Promise<number> {
  const [{ locateMaster, probeMaster }, { renderStatus }, { QUEUE_NAMES }] = await Promise.all([
    import("../master/control.js"),
    import("../master/render.js"),
    import("../queue/types.js"),
  ]);
  const configFile = configPath(opts);
  const where = await locateMaster(configFile);
  const probe = await probeMaster(where.stateDir);
  const s = probe.owner && probe.status?.master.pid === probe.owner.pid ? probe.status : null;
  const running =
    probe.alive === true ||
    (probe.alive === null &&
      s !== null &&
      Date.now() - s.updatedAt < FRESH_MS &&
      s.master.state !== "stopped");
  const stale = !running && (probe.owner !== null || probe.locked);
  const now = Date.now();

  const report: Report = {
    running,
    stale,
    stateDir: where.stateDir,
    qfiles: where.qfiles,
    master:
      running && s
        ? { ...s.master, uptimeSeconds: Math.round((now - s.master.startedAt) / 1000) }
        : probe.owner
          ? { pid: probe.owner.pid, host: probe.owner.host }
          : null,
    config: s?.config ?? null,
    reload: s?.reload ?? null,
    rejectedEdit: s?.rejectedEdit ?? null,
    workers: running && s ? s.workers : [],
    queues: await queues(where.qfiles, QUEUE_NAMES),
    hosts: await hosts(configFile, where.stateDir),
  };
  process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + "\n" : renderStatus(report, now));
  return running ? Exit.OK : stale ? STALE : Exit.FAIL;
}

async function queues(root: string, names: readonly string[]): Promise<Report["queues"]> {
  const { queueStats } = await import("../queue/switchboard.js");
  return Promise.all(
    names.map(async (name) => {
      try {
        return { name, ...(await queueStats(root, name)) };
      } catch {
        return { name, depth: 0, inProgress: 0, oldest: null };
      }
    }),
  );
}

/** Health of the configured hosts (or of every recorded one when the config does not load). */
async function hosts(configFile: string, stateDir: string): Promise<Report["hosts"]> {
  try {
    const { readHostHealth } = await import("../delivery/health.js");
    let ids: string[] | undefined;
    try {
      const { loadConfig } = await import("../config/load.js");
      const { hostId } = await import("../master/plan.js");
      const c = await loadConfig(configFile);
      ids = [...c.smtp.hosts, ...c.smtp.fallback].map((h) => hostId(h));
    } catch {
      ids = undefined;
    }
    const records = await readHostHealth(stateDir, ids);
    return records.map((r) => ({ ...r }));
  } catch {
    return null;
  }
}
