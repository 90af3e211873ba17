/**
 * The environment each worker is started with: the master's, less the SMTP secrets for every worker
 * that never talks SMTP. Only `outgoing` and `backoff` log in to SMTP hosts; an incoming, bounce,
 * command or archive worker (the ones that parse strangers' mail) gets neither the variables named
 * by `auth.pass_env` nor $CREDENTIALS_DIRECTORY (where `auth.pass_credential` is read).
 */
import type { Config, RunnerName } from "../config/schema.js";

/** The runners that deliver over SMTP and so need the hosts' passwords. */
export const SMTP_RUNNERS: ReadonlySet<string> = new Set<RunnerName>(["outgoing", "backoff"]);

/** The names of the environment variables that hold or lead to an SMTP password under this config. */
export function secretVariables(config: Pick<Config, "smtp">): string[] {
  const names = new Set<string>(["CREDENTIALS_DIRECTORY"]);
  for (const h of [...config.smtp.hosts, ...config.smtp.fallback])
    if (h.auth?.pass_env !== undefined) names.add(h.auth.pass_env);
  return [...names];
}

/** `base` for an SMTP runner; for the others a copy without the secret variables. */
export function workerEnv(
  runner: string,
  config: Pick<Config, "smtp">,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  if (SMTP_RUNNERS.has(runner)) return base;
  const env = { ...base };
  for (const name of secretVariables(config)) delete env[name];
  return env;
}
