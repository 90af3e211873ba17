/**
 * The worker's end of its IPC channel to the master: asking for the settings the master has validated,
 * the cluster lease deadline the master keeps pushing forward, and sending the worker's own messages.
 * Separate from worker.ts, which runs the process (signals, the runner loop, heartbeats, exit codes):
 * this is the worker's half of the protocol in ../protocol/worker.ts. Without a channel (a worker started by hand) none of it sends anything.
 */
import {
  SETTINGS_ENV,
  isLeaseMessage,
  isSettingsMessage,
  type Settings,
  type SettingsMessage,
  type WorkerMessage,
} from "../protocol/worker.js";
import { monotonicMs } from "../util/clock.js";

export interface LeaseFence {
  /** resolves true at the first deadline, false when none came within `waitMs` */
  armed: Promise<boolean>;
  /** exit now (onExpire) if the deadline has passed, whatever the timers say; before taking an entry */
  check(): void;
  close(): void;
}

/**
 * The lease deadline the master keeps pushing forward, on the monotonic clock. `onExpire` runs when
 * a deadline passes without renewal (a timer, and `check()` before each entry); a deadline already
 * past when it arrives runs it at once.
 */
export function leaseFence(waitMs: number, onExpire: () => void): LeaseFence {
  let timer: NodeJS.Timeout | undefined;
  let deadline = Infinity;
  let settle: (ok: boolean) => void = () => undefined;
  const armed = new Promise<boolean>((resolve) => (settle = resolve));
  const first = setTimeout(() => settle(false), waitMs);
  const check = (): void => {
    if (monotonicMs() >= deadline) onExpire();
  };
  const onMessage = (m: unknown): void => {
    if (!isLeaseMessage(m)) return;
    const now = monotonicMs();
    deadline = m.until !== undefined ? Math.min(m.until, now + m.ms) : now + m.ms;
    clearTimeout(first);
    clearTimeout(timer);
    if (deadline <= now) {
      onExpire();
      return;
    }
    settle(true);
    timer = setTimeout(onExpire, Math.ceil(deadline - now));
    timer.unref();
  };
  process.on("message", onMessage);
  return {
    armed,
    check,
    close() {
      clearTimeout(first);
      clearTimeout(timer);
      settle(false);
      process.off("message", onMessage);
    },
  };
}

export function settingsOf(m: SettingsMessage): Settings {
  return { config: m.config, lists: new Map(m.lists) };
}

/** How long a worker waits for the master's answer to `settings?` before it reads the config itself. */
const SETTINGS_WAIT_MS = 5000;

/**
 * The settings from the master, when it started this worker to be given them (SETTINGS_ENV and an IPC
 * channel); null otherwise, or when no answer came in time.
 */
export async function settingsFromMaster(): Promise<Settings | null> {
  const wanted = process.env[SETTINGS_ENV] === "1";
  // not for whatever this process might start in turn
  delete process.env[SETTINGS_ENV];
  if (!wanted || !process.send || !process.connected) return null;
  return new Promise((resolve) => {
    const done = (s: Settings | null): void => {
      clearTimeout(timer);
      process.off("message", onMessage);
      process.off("disconnect", onGone);
      resolve(s);
    };
    const onMessage = (m: unknown): void => {
      if (isSettingsMessage(m)) done(settingsOf(m));
    };
    const onGone = (): void => done(null);
    const timer = setTimeout(() => done(null), SETTINGS_WAIT_MS);
    process.on("message", onMessage);
    process.on("disconnect", onGone);
    send({ type: "settings?" });
  });
}

export function send(msg: WorkerMessage): void {
  if (process.send && process.connected) process.send(msg);
}

/** Send and wait (briefly) until the message is handed to the channel, before it is disconnected. */
export function sendFlushed(msg: WorkerMessage): Promise<void> {
  const channel = process.send?.bind(process);
  if (!channel || !process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    try {
      channel(msg, undefined, undefined, () => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}
