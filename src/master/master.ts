/**
 * The master process: takes the lock, runs the workers of the config's plan, follows config edits,
 * answers signals and keeps `<state>/status.json` current. What happens before the workers start
 * (lock, orphans, cluster join) is in startup.ts, the status writing in status-writer.ts.
 *
 *   SIGTERM, SIGINT  stop every worker (SIGKILL after master.stop_timeout), release the lock, exit 0
 *   SIGHUP           reread the config (as a file edit does) and reopen the log file
 *   SIGUSR1          restart the workers one at a time
 */
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Config } from "../config/schema.js";
import type { ListConfig } from "../lists/schema.js";
import { MasterListeners } from "./listeners.js";
import { describeError, formatIssue } from "../util/errors.js";
import { releaseInOrder } from "../util/release.js";
import { createLogger, type Logger, type LoggerHandle } from "../util/log.js";
// cluster mode's code is loaded only when the config has a `cluster:` section
import type { ClusterNode } from "./cluster.js";
import type { MasterLock } from "./lock.js";
import { issuesOf, warnNextStartOnly } from "./config-edit.js";
import { acceptedNodeFlags } from "./node-flags.js";
import { planWorkers, type WorkerSpec } from "./plan.js";
import { prepareMaster, type ClusterParts } from "./startup.js";
import { WORKER_EXEC_ARGV, workerCommand, type WorkerCommandFactory } from "./slot.js";
import { Supervisor, type SupervisorOptions, type SupervisorTimings } from "./supervisor.js";
import { StatusWriter } from "./status-writer.js";
import { workerEnv } from "./worker-env.js";
import { ConfigWatcher } from "./watch.js";

export interface MasterOptions {
  configFile: string;
  /** reads and validates the config and lists; throws ConfigError */
  load: (file: string) => Promise<{ config: Config; lists?: ReadonlyMap<string, ListConfig> }>;
  /** extra arguments for every worker (e.g. --allow-root) */
  workerArgs?: readonly string[];
  /** how to start a worker (default: `qrunner start --runner --slice -C`); tests swap in a fake */
  command?: WorkerCommandFactory;
  /** backoff and health settings, for tests */
  tuning?: Pick<SupervisorOptions, "backoffBaseMs" | "backoffMaxMs" | "healthyRunMs">;
  /** how often status.json is rewritten without events, ms (default 2000) */
  statusIntervalMs?: number;
}

function timingsOf(config: Config): SupervisorTimings {
  return {
    stallTimeoutMs: config.master.stall_timeout,
    restartWindowMs: config.master.restart_window,
    stopTimeoutMs: config.master.stop_timeout,
  };
}

/**
 * Run the master until SIGTERM/SIGINT; resolves with the exit code. Throws ConfigError when the
 * config is invalid at start, MasterRunningError when another master holds the lock.
 */
export async function runMaster(opts: MasterOptions): Promise<number> {
  const { config, lists } = await opts.load(opts.configFile);
  const logHandle = createLogger(config.log, { role: "master" });
  const { lock, cluster } = await prepareMaster(config, opts.configFile, logHandle);
  // the workers' tuning options this node accepts (a refused one would stop every worker at start)
  const nodeOptions = await acceptedNodeFlags(WORKER_EXEC_ARGV, {
    cacheFile: path.join(config.state, "node-flags.json"),
    logger: logHandle.logger,
  });
  return new Master(opts, config, lists ?? new Map(), logHandle, lock, nodeOptions, cluster).run();
}

class Master {
  private readonly log: Logger;
  private readonly stateDir: string;
  private readonly supervisor: Supervisor;
  /** LMTP intake and the metrics endpoint */
  private readonly listeners: MasterListeners;
  private watcher: ConfigWatcher | null = null;
  /** what status.json says about the master, and its writing */
  private readonly status: StatusWriter;
  /** reloads and rolling restarts run one at a time, in order */
  private ops: Promise<void> = Promise.resolve();
  private stopping = false;
  private done!: (code: number) => void;
  private readonly signals: Array<[NodeJS.Signals, () => void]>;
  private readonly cluster: ClusterNode | null;

  constructor(
    private readonly opts: MasterOptions,
    private config: Config,
    private lists: ReadonlyMap<string, ListConfig>,
    private readonly logHandle: LoggerHandle,
    private readonly lock: MasterLock,
    /** the node options of WORKER_EXEC_ARGV this node accepts, for the worker command */
    nodeOptions: readonly string[],
    /** cluster mode: this node's leases and balancing; null when the config has no `cluster:` */
    private readonly clusterParts: ClusterParts | null = null,
  ) {
    const cluster = (this.cluster = clusterParts?.node ?? null);
    const command = opts.command ?? workerCommand(opts.configFile, opts.workerArgs);
    this.log = logHandle.logger;
    this.stateDir = config.state;
    this.status = new StatusWriter(
      this.stateDir,
      { config: () => this.config, workers: () => this.supervisor.snapshot() },
      this.log,
    );
    this.supervisor = new Supervisor({
      logger: this.log,
      timings: timingsOf(config),
      command: (spec) => command(spec, nodeOptions),
      // SMTP passwords only for the workers that deliver
      env: (spec) => workerEnv(spec.runner, this.config),
      ...opts.tuning,
      ...(cluster
        ? {
            holdBack: (spec: WorkerSpec) => cluster.holdBack(spec.slice),
          }
        : {}),
      onChange: () => this.status.changed(),
      onHeartbeat: (spec, pid, hb) =>
        this.listeners.heartbeat({ key: spec.key, runner: spec.runner, slice: spec.slice, pid }, hb),
      onAllReady: (count) => {
        this.status.readyMs = Math.round(performance.now());
        this.log.info({ workers: count, ms: this.status.readyMs }, "all workers ready");
        this.status.changed();
      },
    });
    this.listeners = new MasterListeners({
      settings: () => ({ config: this.config, lists: this.lists }),
      workers: () => this.supervisor.snapshot(),
      logger: this.log,
    });
    this.signals = [
      ["SIGTERM", () => void this.shutdown("SIGTERM")],
      ["SIGINT", () => void this.shutdown("SIGINT")],
      ["SIGHUP", () => this.hangup()],
      ["SIGUSR1", () => this.enqueue("rolling restart", () => this.supervisor.rollingRestart())],
    ];
  }

  async run(): Promise<number> {
    const finished = new Promise<number>((resolve) => (this.done = resolve));
    try {
      // before any worker: a master that cannot take its LMTP or metrics address fails at once
      await this.listeners.apply(this.config, true);
    } catch (err) {
      this.log.fatal({ err: describeError(err) }, "cannot start the listeners; fix the address or free it");
      await releaseInOrder(this.log, [
        ["close the listeners", () => this.listeners.close()],
        ["leave the cluster", () => this.cluster?.close()],
        ["release the lock", () => this.lock.release()],
      ]);
      this.logHandle.close();
      return 1;
    }
    for (const [sig, fn] of this.signals) process.on(sig, fn);
    const specs = this.plan(this.config);
    this.log.info(
      { config: this.opts.configFile, version: this.config.version, workers: specs.length },
      "master starting",
    );
    this.supervisor.start(specs);
    if (this.clusterParts) {
      const { node, supervisorHooks } = this.clusterParts;
      node.start(
        supervisorHooks(this.supervisor, () => this.enqueueWait("cluster re-plan", () => this.replan())),
      );
    }
    this.status.state = "running";
    this.status.every(this.opts.statusIntervalMs ?? 2000);
    this.status.changed();
    try {
      const watcher = await ConfigWatcher.start({
        configFile: this.opts.configFile,
        listsDir: this.config.lists,
        logger: this.log,
        onChange: (paths) => this.enqueue("config edit", () => this.reload("edit", paths)),
      });
      if (this.stopping) await watcher.close();
      else this.watcher = watcher;
    } catch (err) {
      this.log.warn(
        { err: describeError(err) },
        "cannot watch the config; edits take effect on `qrunner reload` only",
      );
    }
    return finished;
  }

  private enqueue(what: string, fn: () => Promise<void>): void {
    void this.enqueueWait(what, fn);
  }

  /** Run `fn` after the operations queued before it; resolves when it is done (or skipped: stopping). */
  private enqueueWait(what: string, fn: () => Promise<void>): Promise<void> {
    this.ops = this.ops.then(async () => {
      if (this.stopping) return;
      try {
        await fn();
      } catch (err) {
        this.log.error({ err: describeError(err) }, `${what} failed`);
      }
    });
    return this.ops;
  }

  /** The worker plan for a config: in cluster mode over the slices this node holds now. */
  private plan(config: Config): WorkerSpec[] {
    return planWorkers(
      config,
      this.cluster ? { count: this.cluster.count, slices: this.cluster.active() } : undefined,
    );
  }

  /** Cluster mode: this node's slices changed; replace the workers whose slices changed. */
  private async replan(): Promise<void> {
    const diff = await this.supervisor.apply(this.plan(this.config), timingsOf(this.config));
    if (diff.removed.length || diff.added.length)
      this.log.info(
        { replaced: diff.removed.map((s) => s.key), started: diff.added.map((s) => s.key) },
        "workers follow this node's slices",
      );
  }

  private hangup(): void {
    this.logHandle.reopen();
    this.enqueue("reload", () => this.reload("SIGHUP", []));
  }

  /** Read the config again; valid: apply the new plan; invalid: keep the old config, record the issues. */
  private async reload(why: string, paths: string[]): Promise<void> {
    let next: Config;
    let loaded: Awaited<ReturnType<MasterOptions["load"]>>;
    try {
      loaded = await this.opts.load(this.opts.configFile);
      next = loaded.config;
    } catch (err) {
      const issues = issuesOf(err, this.opts.configFile);
      this.status.rejectedEdit(why, issues);
      this.log.error(
        { why, issues: issues.map(formatIssue) },
        "config edit rejected; the old config stays in force",
      );
      this.status.changed();
      return;
    }
    if (this.stopping) return;
    warnNextStartOnly(
      { stateDir: this.stateDir, config: this.config, clustered: this.cluster !== null },
      next,
      this.log,
    );
    this.log.level = next.log.level;
    this.watcher?.setListsDir(next.lists);
    if (this.cluster) this.cluster.edited(next.cluster);
    this.config = next;
    if (loaded.lists) this.lists = loaded.lists;
    this.status.reloaded(why);
    this.status.changed();
    await this.listeners.apply(next, false);
    const diff = await this.supervisor.apply(this.plan(next), timingsOf(next));
    this.log.info(
      {
        why,
        ...(paths.length ? { paths } : {}),
        version: next.version,
        replaced: diff.removed.map((s) => s.key),
        started: diff.added.map((s) => s.key),
        reloaded: diff.kept.length,
      },
      "config reloaded",
    );
  }

  private async shutdown(signal: string): Promise<void> {
    if (this.stopping) {
      this.log.info({ signal }, "already stopping");
      return;
    }
    this.stopping = true;
    // no more claims or releases; the leases stay refreshed (and watched) until the workers are gone
    this.cluster?.pause();
    this.status.state = "stopping";
    this.log.info({ signal, timeout: this.config.master.stop_timeout }, "stopping the workers");
    this.status.changed();
    const failed = await releaseInOrder(this.log, [
      ["stop watching the config", () => this.watcher?.close()],
      // no new mail while the workers stop; transactions in DATA are finished first
      ["close the intake", () => this.listeners.closeIntake()],
      ["stop the workers", () => this.supervisor.stop()],
      // a node that cannot say goodbye leaves its etcd lease to run out by itself (the TTL)
      ["leave the cluster", () => this.cluster?.close()],
      ["close the listeners", () => this.listeners.close()],
      ["write the final status", () => this.status.stopped()],
      ["release the lock", () => this.lock.release()],
    ]);
    for (const [sig, fn] of this.signals) process.off(sig, fn);
    this.log.info({ failedSteps: failed }, "master stopped");
    this.logHandle.close();
    this.done(0);
  }
}
