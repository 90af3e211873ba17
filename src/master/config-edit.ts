/**
 * A config edit while the master runs: most keys apply at once (the new worker plan, the log level,
 * the listeners, a cluster node's weight), a few only at the next start, which the operator is told;
 * an edit that does not load is reported as issues and the old config stays in force.
 */
import type { Config } from "../config/schema.js";
import { ConfigError, describeError, type ConfigIssue } from "../util/errors.js";
import type { Logger } from "../util/log.js";

/** What a failed reread says, as issues for status.json (a ConfigError's own, else one at the file). */
export function issuesOf(err: unknown, file: string): ConfigIssue[] {
  if (err instanceof ConfigError) return [...err.issues];
  return [{ file, line: 0, col: 0, message: describeError(err) }];
}

/**
 * Warn of the edited keys that take effect only at the next start: `state` (against the one in force,
 * `stateDir`), `log.file`, and `cluster` on a master started without it (a cluster node judges its own).
 */
export function warnNextStartOnly(
  running: { stateDir: string; config: Config; clustered: boolean },
  next: Config,
  log: Logger,
): void {
  if (next.state !== running.stateDir)
    log.warn({ state: next.state }, "`state` changes take effect at the next start");
  if (next.log.file !== running.config.log.file) log.warn("`log.file` changes take effect at the next start");
  if (!running.clustered && next.cluster) log.warn("`cluster` takes effect at the next start");
}
