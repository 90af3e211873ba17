/**
 * The process side of one worker slot: spawning it with an IPC channel (and the settings variable and
 * nice level its command asks for), messaging it over that channel, and handing a config change to a
 * running worker (the settings over IPC, or SIGHUP). Kept apart from the supervisor so that its decisions (which worker runs, when one
 * is restarted or stopped) read without the child_process and IPC mechanics.
 */
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";
import { SETTINGS_ENV, settingsMessage } from "../protocol/worker.js";
import type { Slot, WorkerCommand } from "./slot.js";

/** What a spawned worker reports back to its supervisor, with the process it came from. */
export interface WorkerEvents {
  /** called once, whether the process exited or could not be spawned at all */
  exit: (child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => void;
  message: (child: ChildProcess, m: unknown) => void;
}

/**
 * Start the slot's process with `command` and mark the slot `starting`. Null when spawn itself threw
 * (slot.lastError says why; no event follows).
 */
export function spawnWorker(
  slot: Slot,
  command: WorkerCommand,
  log: Logger,
  events: WorkerEvents,
  /** the worker's environment (worker-env.ts: no SMTP secrets for non-SMTP runners); default the master's */
  baseEnv: NodeJS.ProcessEnv = process.env,
): ChildProcess | null {
  const { file, args, execArgv = [], settings } = command;
  const now = Date.now();
  Object.assign(slot, { intent: "run", state: "starting", startedAt: now, lastMessageAt: now, hb: null });
  slot.dueSince = null;
  slot.nextStartAt = null;
  slot.hupPending = false;
  slot.settings = settings ?? null;
  slot.nodeOptions = execArgv;
  let child: ChildProcess;
  try {
    child = spawn(file, [...execArgv, ...args], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: settings ? { ...baseEnv, [SETTINGS_ENV]: "1" } : baseEnv,
    });
  } catch (err) {
    slot.lastError = `cannot start: ${describeError(err)}`;
    return null;
  }
  slot.child = child;
  let gone = false;
  const exited = (code: number | null, signal: NodeJS.Signals | null) => {
    if (gone) return;
    gone = true;
    events.exit(child, code, signal);
  };
  child.on("exit", exited);
  child.on("error", (err) => {
    slot.lastError = `cannot start: ${describeError(err)}`;
    if (child.pid === undefined) exited(null, null); // the spawn itself failed: no exit event follows
  });
  child.on("message", (m: unknown) => events.message(child, m));
  if (child.pid !== undefined && slot.spec.nice !== 0) {
    try {
      os.setPriority(child.pid, slot.spec.nice);
    } catch (err) {
      log.warn(
        { runner: slot.spec.runner, nice: slot.spec.nice, err: describeError(err) },
        "cannot set nice",
      );
    }
  }
  log.debug({ runner: slot.spec.runner, slice: slot.spec.slice, workerPid: child.pid }, "worker spawned");
  return child;
}

/** A kept worker after an accepted config edit: the new settings over IPC, or SIGHUP to reread the file. */
export function reloadWorker(slot: Slot, child: ChildProcess, log: Logger): void {
  if (slot.settings) sendSettings(slot, child, log);
  else child.kill("SIGHUP");
}

/** The master's settings to a worker that takes them over IPC (nothing when it has none yet). */
export function sendSettings(slot: Slot, child: ChildProcess, log: Logger): void {
  const settings = slot.settings?.() ?? null;
  if (settings === null || !child.connected) return;
  try {
    child.send(settingsMessage(settings), (err) => {
      if (err)
        log.debug(
          { workerPid: child.pid, err: describeError(err) },
          "cannot send the settings to the worker",
        );
    });
  } catch {
    // channel closed between the check and the send: the worker is exiting
  }
}

/** Send a running worker a message over its IPC channel; a worker that is exiting just misses it. */
export function sendMessage(child: ChildProcess, m: object, log: Logger): void {
  try {
    child.send(m, (err) => {
      // the worker is exiting: its exit is handled elsewhere
      if (err) log.debug({ workerPid: child.pid, err: describeError(err) }, "cannot message worker");
    });
  } catch {
    // channel closed between the caller's `connected` check and the send
  }
}
