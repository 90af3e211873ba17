/** `qrunner stop`: SIGTERM to the running master, then wait until it and its workers have exited. */
import type { Command } from "commander";
import { configPath, Exit, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";

interface StopOptions extends GlobalOptions {
  timeout?: string;
}

/** Exit code when the master is still running once --timeout has passed. */
const STILL_RUNNING = 2;

export function register(program: Command): void {
  withConfigOption(
    program
      .command("stop")
      .description(
        "stop the running master and its workers; exit 0 stopped, 1 none ran, 2 still running after --timeout",
      )
      .option("--timeout <seconds>", "how long to wait (default: master.stop_timeout + 15s)"),
  )
    .addHelpText("after", "\nExample:\n  qrunner stop -C /etc/qrunner/qrunner.yaml --timeout=60")
    .action(async (opts: StopOptions) => setExit(await stop(opts)));
}

async function stop(opts: StopOptions): Promise<number> {
  let timeoutMs: number | undefined;
  if (opts.timeout !== undefined) {
    const s = Number(opts.timeout);
    if (!Number.isFinite(s) || s < 0) {
      warn(`--timeout takes seconds, not ${JSON.stringify(opts.timeout)}`);
      return Exit.USAGE;
    }
    timeoutMs = s * 1000;
  }
  const { locateMaster, probeMaster, waitGone, workerPids } = await import("../master/control.js");
  const { verifyMaster } = await import("../master/master-identity.js");
  const { lockPaths } = await import("../master/owner-record.js");
  const where = await locateMaster(configPath(opts));
  const probe = await probeMaster(where.stateDir, where.pidFile);
  const owner = probe.owner;
  if (!owner || probe.alive === false) {
    warn(
      owner || probe.locked
        ? `no master running for ${where.stateDir} (a stale lock or pid file is left; the next start takes it over)`
        : `no master running for ${where.stateDir}`,
    );
    return Exit.FAIL;
  }
  if (probe.alive === null) {
    warn(`the master runs on ${owner.host} (pid ${owner.pid}); run \`qrunner stop\` there`);
    return Exit.FAIL;
  }
  const pids = [owner.pid, ...workerPids(probe)];
  try {
    // run as root, never signal a process the daemon's user named but that is no qrunner master
    await verifyMaster(owner, lockPaths(where.stateDir, where.pidFile).pidFile);
  } catch (err) {
    warn((err as Error).message);
    return Exit.FAIL;
  }
  try {
    process.kill(owner.pid, "SIGTERM");
  } catch (err) {
    warn(`cannot signal the master (pid ${owner.pid}): ${(err as Error).message}`);
    return Exit.FAIL;
  }
  const limit = timeoutMs ?? where.stopTimeoutMs + 15_000;
  if (await waitGone(pids, limit)) {
    process.stdout.write(`master (pid ${owner.pid}) and its workers stopped\n`);
    return Exit.OK;
  }
  warn(`the master (pid ${owner.pid}) or a worker is still running after ${Math.round(limit / 1000)}s`);
  return STILL_RUNNING;
}
