/** `qrunner reload`: SIGHUP to the master (reread the config, reopen log files), and report the outcome. */
import type { Command } from "commander";
import { configPath, Exit, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";

/** How long to wait for the master to report the reload in status.json before saying only "sent". */
const REPORT_WAIT_MS = 10_000;

export function register(program: Command): void {
  withConfigOption(
    program
      .command("reload")
      .description(
        "make the master reread the config and reopen log files; exit 0 done, 1 none runs, 78 edit rejected",
      ),
  )
    .addHelpText("after", "\nExample:\n  qrunner reload -C /etc/qrunner/qrunner.yaml")
    .action(async (opts: GlobalOptions) => setExit(await reload(opts)));
}

async function reload(opts: GlobalOptions): Promise<number> {
  const { locateMaster, probeMaster } = await import("../master/control.js");
  const { readStatus } = await import("../master/status-file.js");
  const { verifyMaster } = await import("../master/master-identity.js");
  const { lockPaths } = await import("../master/owner-record.js");
  const where = await locateMaster(configPath(opts));
  const probe = await probeMaster(where.stateDir, where.pidFile);
  const owner = probe.owner;
  if (!owner || probe.alive !== true) {
    warn(
      owner && probe.alive === null
        ? `the master runs on ${owner.host} (pid ${owner.pid}); run \`qrunner reload\` there`
        : `no master running for ${where.stateDir}`,
    );
    return Exit.FAIL;
  }
  const before = probe.status?.master.pid === owner.pid ? probe.status.reload.count : 0;
  try {
    // run as root, never signal a process the daemon's user named but that is no qrunner master
    await verifyMaster(owner, lockPaths(where.stateDir, where.pidFile).pidFile);
  } catch (err) {
    warn((err as Error).message);
    return Exit.FAIL;
  }
  try {
    process.kill(owner.pid, "SIGHUP");
  } catch (err) {
    warn(`cannot signal the master (pid ${owner.pid}): ${(err as Error).message}`);
    return Exit.FAIL;
  }
  // the master counts rereads in status.json: wait for ours to show up
  const until = Date.now() + REPORT_WAIT_MS;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    const s = await readStatus(where.stateDir);
    if (!s || s.master.pid !== owner.pid || s.reload.count <= before) continue;
    if (s.reload.ok === false) {
      warn("config edit rejected; the old config stays in force:");
      process.stderr.write((s.rejectedEdit?.message ?? "") + "\n");
      return Exit.CONFIG;
    }
    process.stdout.write(`reloaded: config ${s.config.version.slice(0, 12)} in force\n`);
    return Exit.OK;
  }
  process.stdout.write(`SIGHUP sent to the master (pid ${owner.pid})\n`);
  return Exit.OK;
}
