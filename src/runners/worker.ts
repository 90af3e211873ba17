/**
 * One worker process: one runner over one slice (or a set of slices, `--slice=3/16,7/16`). The master
 * starts it as `qrunner start --runner=NAME --slice=K/N`; an operator can start exactly the same by
 * hand. SIGTERM/SIGINT finish the entries in hand and exit 0; SIGHUP rereads the config (an invalid
 * edit keeps the old one) and reopens the log file; losing the master's IPC channel is a stop too.
 *
 * A worker the master starts (SETTINGS_ENV set, an IPC channel) does not read the config: it asks the
 * master for the settings it has validated, and takes each settings message the master sends after an
 * accepted edit as a reload. It so never loads yaml nor zod, which keeps every resident worker
 * smaller. Started by hand, or should the master not answer, it reads the config file as before.
 *
 * In cluster mode (a `cluster:` config, started by a master) the worker only works while its master's
 * leases on its slices are trustworthy: the master keeps sending it how long that is, and a worker
 * that passes that deadline without a renewal (its master hung or died) exits at once, leaving the
 * entries in hand in progress for the slices' next owner to recover. It waits for the first deadline
 * before it touches the queue.
 *
 * This module runs the process; what the worker says and hears over the channel (the settings, the
 * lease, its own messages) is in worker-channel.ts.
 */
import os from "node:os";
import type { Logger } from "pino";
import type { RunnerName } from "../config/schema.js";
import { RUNNER_NAMES } from "../config/runner-names.js";
import { parseSlice, formatSlice, type Slice } from "../queue/slice.js";
import { Switchboard } from "../queue/switchboard.js";
import { ConfigError, describeError } from "../util/errors.js";
import { CaFileError, MissingSecretError } from "../delivery/errors.js";
import { createLogger, type LoggerHandle } from "../util/log.js";
import { Queues, type RunnerContext } from "./context.js";
import { RunnerLoop } from "./base.js";
import {
  HEARTBEAT_MS,
  WorkerExit,
  isSettingsMessage,
  type Settings,
  type WorkerMessage,
} from "../protocol/worker.js";
import { DeliveryTally } from "./delivery-tally.js";
import { createHandler } from "./registry.js";
import { leaseFence, send, sendFlushed, settingsFromMaster, settingsOf } from "./worker-channel.js";

/** The config file's settings, read and validated here (loads yaml and zod on first use). */
async function loadSettings(configFile: string): Promise<Settings> {
  const { loadAll } = await import("../lists/load.js");
  return loadAll(configFile);
}

export interface WorkerOptions {
  configFile: string;
  runner: string;
  slice: string;
  once: boolean;
}

export async function runWorker(opts: WorkerOptions): Promise<number> {
  if (!(RUNNER_NAMES as readonly string[]).includes(opts.runner)) {
    process.stderr.write(
      `qrunner: unknown runner ${JSON.stringify(opts.runner)} (one of ${RUNNER_NAMES.join(", ")})\n`,
    );
    return WorkerExit.USAGE;
  }
  const runner = opts.runner as RunnerName;
  let slice: Slice;
  try {
    slice = parseSlice(opts.slice);
  } catch (err) {
    process.stderr.write(`qrunner: ${describeError(err)}\n`);
    return WorkerExit.USAGE;
  }
  let settings: Settings;
  // where the settings came from, for the ready line: "master" (over IPC) or the config file
  let settingsFrom = "master";
  try {
    const given = await settingsFromMaster();
    if (given) settings = given;
    else {
      settingsFrom = opts.configFile;
      settings = await loadSettings(opts.configFile);
    }
  } catch (err) {
    process.stderr.write(`qrunner: ${err instanceof ConfigError ? err.message : describeError(err)}\n`);
    return WorkerExit.CONFIG;
  }
  process.umask(0o077);
  const sliceText = formatSlice(slice);
  const logHandle: LoggerHandle = createLogger(settings.config.log, { runner, slice: sliceText });
  const logger = logHandle.logger;
  const runnerConfig = settings.config.runners[runner];
  setNice(runnerConfig.nice, logger);

  const abort = new AbortController();
  const queues = new Queues(settings.config.qfiles, logger, settings.config.queue.recycle);
  const tally = new DeliveryTally();
  const ctx: RunnerContext = {
    runner,
    slice,
    settings: () => settings,
    logger,
    queues,
    signal: abort.signal,
    deliveries: tally,
  };
  const stop = (why: string) => (): void => {
    if (!abort.signal.aborted) logger.info({ why }, "stopping after the entries in hand");
    abort.abort();
  };
  const onTerm = stop("SIGTERM");
  const onInt = stop("SIGINT");
  const onDisconnect = stop("master gone (IPC channel closed)");
  const onHup = (): void => {
    logHandle.reopen();
    loadSettings(opts.configFile).then(
      (s) => {
        settings = s;
        logger.info({ version: s.config.version }, "config reloaded");
      },
      (err: unknown) =>
        logger.error({ err: describeError(err) }, "config edit rejected; the old config stays in force"),
    );
  };
  // the master's settings after an accepted edit: a reload, as SIGHUP is for a worker started by hand
  const onSettings = (m: unknown): void => {
    if (!isSettingsMessage(m)) return;
    logHandle.reopen();
    settings = settingsOf(m);
    logger.info({ version: settings.config.version }, "config reloaded");
  };
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  process.on("SIGHUP", onHup);
  process.on("disconnect", onDisconnect);
  process.on("message", onSettings);

  let heartbeat: NodeJS.Timeout | undefined;
  let handler;
  let beat: (() => WorkerMessage) | undefined;
  const cluster = settings.config.cluster;
  const fence =
    cluster && process.send
      ? leaseFence(cluster.lease, () => {
          logger.fatal(
            "the master did not renew the lease on this worker's slices in time; exiting at once " +
              "(entries in hand stay in progress; the slices' next owner recovers them)",
          );
          logHandle.close();
          process.exit(WorkerExit.SOFTWARE);
        })
      : null;
  if (cluster && !fence)
    logger.warn("cluster mode without a master: nothing stops another node from working these slices too");
  try {
    if (fence) {
      // a stop while waiting ends the wait
      const stopped = new Promise<false>((resolve) =>
        abort.signal.addEventListener("abort", () => resolve(false)),
      );
      const armed = await Promise.race([fence.armed, stopped]);
      if (abort.signal.aborted) return WorkerExit.OK;
      if (!armed) {
        logger.error(
          { waitedMs: cluster?.lease },
          "no lease deadline from the master; not touching the queue",
        );
        return WorkerExit.SOFTWARE;
      }
    }
    const queue = await Switchboard.open({
      root: settings.config.qfiles,
      queue: runner,
      slice,
      recoveryLimit: settings.config.master.recovery_limit,
      logger,
      spares: queues.spares,
    });
    const shunt = await queues.get("shunt");
    // cluster mode: not even the recovery once the slices' deadline has passed
    fence?.check();
    await queue.recover(shunt);
    handler = await createHandler(runner, ctx);
    const loop = new RunnerLoop(ctx, queue, shunt, handler, {
      concurrency: runnerConfig.concurrency,
      sleep: runnerConfig.sleep,
      once: opts.once,
      ...(fence ? { fence: fence.check } : {}),
    });
    send({ type: "ready", runner, slice: sliceText, pid: process.pid });
    logger.info(
      { queue: runner, concurrency: runnerConfig.concurrency, settings: settingsFrom },
      "worker ready",
    );
    beat = () => {
      const s = loop.stats;
      return {
        type: "heartbeat",
        handled: s.handled,
        failed: s.failed,
        lastProgress: s.lastProgress,
        due: loop.due,
        inHand: s.inHand,
        ...(s.lastError !== undefined ? { lastError: s.lastError } : {}),
        ...(s.waiting !== undefined ? { waiting: s.waiting } : {}),
        ...tally.drain(),
      };
    };
    const next = beat;
    heartbeat = setInterval(() => send(next()), HEARTBEAT_MS);
    heartbeat.unref();
    await loop.run();
    logger.info({ handled: loop.stats.handled, failed: loop.stats.failed }, "worker stopped");
    return WorkerExit.OK;
  } catch (err) {
    if (err instanceof MissingSecretError || err instanceof CaFileError) {
      // the setup is wrong, not the mail: stop before taking any entry, as for an invalid config
      process.stderr.write(`qrunner: ${err.message}\n`);
      logger.fatal({ err: err.message }, "worker cannot start");
      return WorkerExit.CONFIG;
    }
    logger.fatal({ err }, "worker failed");
    return WorkerExit.SOFTWARE;
  } finally {
    clearInterval(heartbeat);
    fence?.close();
    // a last heartbeat, so that the master's counters include the final entries
    if (beat) await sendFlushed(beat());
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onInt);
    process.off("SIGHUP", onHup);
    process.off("disconnect", onDisconnect);
    process.off("message", onSettings);
    await handler?.close?.().catch(() => undefined);
    await queues.close();
    logHandle.close();
    if (process.connected) process.disconnect();
  }
}

function setNice(nice: number, logger: Logger): void {
  if (nice === 0) return;
  try {
    os.setPriority(0, nice);
  } catch (err) {
    logger.warn({ err: describeError(err), nice }, "cannot set process priority");
  }
}
