/**
 * `qrunner start`: the master in the foreground (what systemd runs), or with `--runner` one worker
 * over one slice, no master (what the master itself spawns, and what an operator may run by hand).
 */
import type { Command } from "commander";
import { configPath, Exit, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";

export interface StartOptions extends GlobalOptions {
  runner?: string;
  slice?: string;
  instance?: string;
  once?: boolean;
  allowRoot?: boolean;
}

/** `outgoing:0-4` (a systemd instance name, `-` for `/`) or `outgoing:0/4` → runner and slice. */
export function parseInstance(instance: string): { runner: string; slice: string } | null {
  const m = /^([a-z]+):(\d+)[-/](\d+)(:[0-9.,]+)?$/.exec(instance);
  return m ? { runner: m[1] ?? "", slice: `${m[2]}/${m[3]}${m[4] ?? ""}` } : null;
}

export function register(program: Command): void {
  withConfigOption(
    program
      .command("start")
      .description("run the master in the foreground, or with --runner one worker over one slice")
      .option(
        "--runner <name>",
        "run one runner (incoming, outgoing, bounce, command, archive, backoff), no master",
      )
      .option(
        "--slice <K/N>",
        "with --runner: slice K of N (0 <= K < N), K/N:w0,w1,... weighted, or a set of slices of one N: 3/16,7/16 (also 3,7/16 and 0-3,7/16)",
      )
      .option(
        "--instance <runner:K-N>",
        "the same as --runner and --slice, as a systemd instance name (outgoing:0-4)",
      )
      .option("--once", "with --runner: process what the slice holds now, then exit 0")
      .option("--allow-root", "run even as root (also QRUNNER_ALLOW_ROOT=1)"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  qrunner start -C /etc/qrunner/qrunner.yaml\n  qrunner start --runner=outgoing --slice=0/4 --once\n  qrunner start --runner=incoming --slice=3/16,7/16",
    )
    .action(async (opts: StartOptions) => setExit(await start(opts)));
}

/** `qrunner start` with its options parsed (by commander, or by main.ts's fast path); the exit code. */
export async function start(opts: StartOptions): Promise<number> {
  const allowRoot = opts.allowRoot === true || process.env["QRUNNER_ALLOW_ROOT"] === "1";
  if (process.getuid?.() === 0 && !allowRoot) {
    warn("refusing to run as root: run as the qrunner user (the systemd units do), or pass --allow-root");
    return Exit.FAIL;
  }
  const configFile = configPath(opts);
  let runner = opts.runner;
  let slice = opts.slice;
  if (opts.instance !== undefined) {
    const parsed = parseInstance(opts.instance);
    if (!parsed || runner !== undefined || slice !== undefined) {
      warn(
        `--instance takes RUNNER:K-N (e.g. outgoing:0-4) and replaces --runner/--slice, not ${JSON.stringify(opts.instance)}`,
      );
      return Exit.USAGE;
    }
    ({ runner, slice } = parsed);
  }
  if (runner !== undefined) {
    const { runWorker } = await import("../runners/worker.js");
    return runWorker({ configFile, runner, slice: slice ?? "0/1", once: opts.once === true });
  }
  if (slice !== undefined || opts.once) {
    warn("--slice and --once go with --runner");
    return Exit.USAGE;
  }
  return runMasterCli(configFile, opts.allowRoot === true);
}

async function runMasterCli(configFile: string, allowRootFlag: boolean): Promise<number> {
  const [
    { loadAll },
    { runMaster },
    { MasterRunningError, LockError },
    { ConfigError },
    { ClusterError },
    { workerCommand },
  ] = await Promise.all([
    import("../lists/load.js"),
    import("../master/master.js"),
    import("../master/errors.js"),
    import("../util/errors.js"),
    import("../master/cluster-errors.js"),
    import("../master/slot.js"),
  ]);
  // the last settings the master loaded and accepted: its workers take them over IPC instead of
  // parsing the config again each (see runners/worker.ts)
  let latest: Awaited<ReturnType<typeof loadAll>> | null = null;
  let first = true;
  const load = async (file: string): Promise<Awaited<ReturnType<typeof loadAll>>> => {
    const settings = await loadAll(file);
    if (first) {
      // at start: refuse folders and files others can write or that belong to another user
      first = false;
      const { checkPermissions } = await import("../config/permissions.js");
      const issues = await checkPermissions(settings.config);
      if (issues.length > 0) throw new ConfigError(issues);
    }
    latest = settings;
    return settings;
  };
  // workers run as the same user: pass the root permission on the way the operator gave it
  const workerArgs = allowRootFlag ? ["--allow-root"] : [];
  let code: number;
  try {
    code = await runMaster({
      configFile,
      load,
      workerArgs,
      command: workerCommand(configFile, workerArgs, () => latest),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.message + "\n");
      return Exit.CONFIG;
    }
    if (err instanceof MasterRunningError || err instanceof LockError) {
      warn(err.message);
      return Exit.FAIL;
    }
    // cluster mode: slices that differ from the cluster's (78), a node name in use (1), etcd unreachable (75)
    if (err instanceof ClusterError) {
      warn(err.message);
      return err.exitCode;
    }
    throw err;
  }
  // everything is closed; should a stray handle keep the loop alive, do not hang systemd's stop
  setTimeout(() => process.exit(code), 3000).unref();
  return code;
}
