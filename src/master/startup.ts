/**
 * What must hold before a master starts its workers: it holds the lock on the state directory, the
 * workers a dead master left running are gone, and in cluster mode this node has joined the cluster.
 * Each step undoes the earlier ones when it fails. Kept apart from the running master (master.ts),
 * which only ever sees the outcome: the lock and the cluster node. A start also warns of each SMTP
 * host allowed to send its password in clear text.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../config/schema.js";
import type { Logger, LoggerHandle } from "../util/log.js";
// cluster mode's code is loaded only when the config has a `cluster:` section
import type { ClusterNode } from "./cluster.js";
import type { supervisorHooks } from "./cluster-workers.js";
import { describeError } from "../util/errors.js";
import { LockError } from "./errors.js";
import { MasterLock } from "./lock.js";
import { waitForOrphans } from "./orphans.js";

/** Cluster mode's node and the hooks it works the supervisor through. */
export interface ClusterParts {
  node: ClusterNode;
  supervisorHooks: typeof supervisorHooks;
}

/**
 * Take the lock, wait for the previous master's workers, join the cluster when the config has a
 * `cluster:` section. Throws MasterRunningError when another master holds the lock, and what joining
 * the cluster throws; the log is closed (and the lock released) then.
 */
export async function prepareMaster(
  config: Config,
  configFile: string,
  logHandle: LoggerHandle,
): Promise<{ lock: MasterLock; cluster: ClusterParts | null }> {
  warnPlaintextAuth(config, logHandle.logger);
  let lock: MasterLock;
  const t0 = performance.now();
  try {
    // a pid_file elsewhere (e.g. /run/qrunner, systemd's RuntimeDirectory=): its folder may be new
    if (config.pid_file !== undefined) {
      const dir = path.dirname(config.pid_file);
      await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
        throw new LockError(`cannot create the pid file's folder ${dir}: ${describeError(err)}`, {
          cause: err,
        });
      });
    }
    lock = await MasterLock.acquire(config.state, logHandle.logger, config.pid_file);
  } catch (err) {
    logHandle.close();
    throw err;
  }
  const orphans = await waitForOrphans(
    config.state,
    path.resolve(configFile),
    config.master.stop_timeout,
    logHandle.logger,
  );
  // how long a start waited for the lock (a dead master's, say after a power loss) and its orphans
  logHandle.logger.info({ ms: Math.round(performance.now() - t0), orphans }, "master lock taken");
  let cluster: ClusterParts | null = null;
  if (config.cluster) {
    try {
      const [{ ClusterNode }, { supervisorHooks }] = await Promise.all([
        import("./cluster.js"),
        import("./cluster-workers.js"),
      ]);
      const node = await ClusterNode.join({
        config: config.cluster,
        logger: logHandle.logger,
      });
      cluster = { node, supervisorHooks };
    } catch (err) {
      await lock.release();
      logHandle.close();
      throw err;
    }
  }
  return { lock, cluster };
}

/** `allow_plaintext_auth` is for tests: say so at every start, once per host that has it. */
function warnPlaintextAuth(config: Config, log: Logger): void {
  for (const h of [...config.smtp.hosts, ...config.smtp.fallback])
    if (h.auth && h.allow_plaintext_auth && !h.secure && h.starttls !== "require")
      log.warn(
        { host: h.name ?? `${h.host}:${h.port}` },
        "allow_plaintext_auth: the SMTP password may cross the network in clear text; set secure: true or starttls: require",
      );
}
