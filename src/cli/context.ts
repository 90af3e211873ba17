/**
 * What every command shares: finding the config file, and turning errors into exit codes.
 * Keep this module light: `qrunner inject` loads it on every message an MTA pipes in.
 */
import path from "node:path";
import type { Command } from "commander";

/** sysexits(3) codes, as an MTA's pipe understands them. */
export const Exit = {
  OK: 0,
  FAIL: 1,
  USAGE: 64,
  DATAERR: 65,
  NOUSER: 67,
  SOFTWARE: 70,
  CANTCREAT: 73,
  TEMPFAIL: 75,
  CONFIG: 78,
} as const;

export interface GlobalOptions {
  config?: string;
}

/** -C/--config, else $QRUNNER_CONFIG, else config/qrunner.yaml under the current directory. */
export function configPath(opts: GlobalOptions): string {
  const p = opts.config ?? process.env["QRUNNER_CONFIG"] ?? path.join("config", "qrunner.yaml");
  return path.resolve(p);
}

/** Add -C/--config to a command (every command takes it). */
export function withConfigOption(cmd: Command): Command {
  return cmd.option(
    "-C, --config <file>",
    "config file (default: $QRUNNER_CONFIG, else config/qrunner.yaml)",
  );
}

/** Print a message on stderr, prefixed with the program name. */
export function warn(msg: string): void {
  process.stderr.write(`qrunner: ${msg}\n`);
}

/** Set the exit code and let the event loop drain (never cut a pending fsync short with process.exit). */
export function setExit(code: number): void {
  process.exitCode = code;
}
