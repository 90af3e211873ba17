/**
 * `qrunner status`: the master and its workers (from status.json and pid liveness), every queue's
 * depth and oldest entry, every SMTP host's health. Exit 0 master running, 1 none, 2 only a stale
 * lock or pid file left. `--watch` redraws a compact screen of the same every few seconds.
 */
import type { Command } from "commander";
import type { StatusReport as Report } from "./status-render.js";
import { configPath, Exit, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";
import { RAW_OPTION, terminalText } from "./terminal-text.js";

interface StatusOptions extends GlobalOptions {
  json?: boolean;
  watch?: boolean;
  interval?: string;
  raw?: boolean;
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
      .option("--json", "one JSON document (stable keys) instead of tables; with --watch one per line")
      .option("--watch", "redraw a compact screen (queues with depth bars, workers, hosts) until Ctrl-C")
      .option("--interval <seconds>", "with --watch: seconds between refreshes (or 500ms, 1m)", "2")
      .option(...RAW_OPTION),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  qrunner status\n  qrunner status --json | jq '.workers[] | select(.state != \"ready\")'\n" +
        "  qrunner status --watch --interval=1",
    )
    .action(async (opts: StatusOptions) => setExit(await (opts.watch ? watch(opts) : status(opts))));
}

async function status(opts: StatusOptions): Promise<number> {
  const { renderStatus } = await import("./status-render.js");
  const { report, code } = await collect(configPath(opts));
  // last errors quote SMTP servers and messages: escaped on a terminal
  const out = terminalText(opts.raw);
  if (opts.json) out.write(JSON.stringify(report, null, 2) + "\n");
  else process.stdout.write(renderStatus(out.data(report), Date.now()));
  return code;
}

/** Everything `status` shows, and its exit code. */
async function collect(configFile: string): Promise<{ report: Report; code: number }> {
  const [{ QUEUE_NAMES }, { HOLD_QUEUE }] = await Promise.all([
    import("../queue/types.js"),
    import("../queue/inspect.js"),
  ]);
  const { where, probe, status: s, running } = await masterView(configFile);
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
    queues: await queues(where.qfiles, [...QUEUE_NAMES, HOLD_QUEUE]),
    hosts: await hosts(configFile, where.stateDir),
  };
  return { report, code: running ? Exit.OK : stale ? STALE : Exit.FAIL };
}

/**
 * Where the master of this config keeps its state, what its lock and pid file say, its last status,
 * and whether it runs (on another host of a cluster: a fresh status). Also the web console's view.
 */
export async function masterView(configFile: string) {
  const { locateMaster, probeMaster } = await import("../master/control.js");
  const where = await locateMaster(configFile);
  const probe = await probeMaster(where.stateDir, where.pidFile);
  const status = probe.owner && probe.status?.master.pid === probe.owner.pid ? probe.status : null;
  const running =
    probe.alive === true ||
    (probe.alive === null &&
      status !== null &&
      Date.now() - status.updatedAt < FRESH_MS &&
      status.master.state !== "stopped");
  return { where, probe, status, running };
}

async function queues(root: string, names: readonly string[]): Promise<Report["queues"]> {
  const { queueStats } = await import("../queue/stats.js");
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
      const { hostId } = await import("../delivery/hosts.js");
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

/** ANSI: hide/show the cursor, home, clear the screen, clear to the end of the line and of the screen. */
const HIDE = "\x1b[?25l";
const SHOW = "\x1b[?25h";
const HOME = "\x1b[H";
const CLEAR = "\x1b[2J";
const EOL = "\x1b[K";
const EOS = "\x1b[J";

/**
 * Redraw until SIGINT or SIGTERM. On a terminal each frame overwrites the last (cursor home, each line
 * cleared to its end, the rest of the screen cleared), sized to the terminal; otherwise plain frames
 * of 80 columns follow each other, separated by a blank line. Exits 0, the cursor shown again.
 */
async function watch(opts: StatusOptions): Promise<number> {
  const { parseDuration } = await import("../util/units.js");
  const { renderWatch } = await import("./status-render.js");
  const { setTimeout: sleep } = await import("node:timers/promises");
  const intervalMs = parseDuration(opts.interval ?? "2");
  if (intervalMs === undefined || intervalMs < 100) {
    warn(`--interval: not a duration of at least 100ms: ${opts.interval}`);
    return Exit.USAGE;
  }
  const configFile = configPath(opts);
  const out = process.stdout;
  const tty = out.isTTY === true && !opts.json;
  const safe = terminalText(opts.raw, out);
  const unicode = /utf-?8/i.test(
    process.env["LC_ALL"] || process.env["LC_CTYPE"] || process.env["LANG"] || "",
  );

  const stop = new AbortController();
  let wake = new AbortController();
  const onSignal = () => {
    stop.abort();
    wake.abort();
  };
  const onResize = () => wake.abort();
  // `on`, not `once`: a second Ctrl-C while a frame is being read must not kill us with the cursor hidden
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  if (tty) {
    out.on("resize", onResize);
    out.write(HIDE + CLEAR);
  }
  try {
    for (let first = true; !stop.signal.aborted; first = false) {
      const { report } = await collect(configFile);
      if (stop.signal.aborted) break;
      const now = Date.now();
      if (opts.json) safe.write(JSON.stringify({ at: now, ...report }) + "\n");
      else {
        const width = tty ? out.columns || 80 : 80;
        const height = tty ? out.rows || 24 : Infinity;
        const lines = renderWatch(safe.data(report), { now, width, height, intervalMs, unicode });
        if (tty) out.write(HOME + lines.join(EOL + "\n") + EOL + EOS);
        else out.write((first ? "" : "\n") + lines.join("\n") + "\n");
      }
      wake = new AbortController();
      await sleep(intervalMs, undefined, { signal: wake.signal }).catch(() => undefined);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (tty) {
      out.off("resize", onResize);
      out.write(SHOW + "\n");
    }
  }
  return Exit.OK;
}
