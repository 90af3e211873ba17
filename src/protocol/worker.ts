import type { Config } from "../config/schema.js";
import type { ListConfig } from "../lists/schema.js";

/**
 * The master↔worker protocol: what the two processes say to each other over the IPC channel
 * (child_process spawn with 'ipc'), the environment variable that turns it on, and the exit codes that
 * tell the master what to do next. Both sides import this module and nothing else of each other.
 */

/** The config and lists in force; replaced as a whole when a valid edit is loaded. */
export interface Settings {
  readonly config: Config;
  readonly lists: ReadonlyMap<string, ListConfig>;
}

/**
 * Messages a worker sends its master over the IPC channel (child_process `fork`/`spawn` with 'ipc').
 * A worker started by hand has no channel and sends nothing.
 */
export type WorkerMessage =
  /** a worker the master started with SETTINGS_ENV asks for the settings (answered by a SettingsMessage) */
  | { type: "settings?" }
  | { type: "ready"; runner: string; slice: string; pid: number }
  | {
      type: "heartbeat";
      /** entries finished (handled or moved on) since start */
      handled: number;
      /** entries shunted or sent to bad since start */
      failed: number;
      /** ms epoch of the last finished entry (or of start) */
      lastProgress: number;
      /** entries of this slice that are due now (0 when it has nothing to do) */
      due: number;
      /** entries being handled right now */
      inHand: number;
      lastError?: string;
      /** why the worker is not working although entries are due (e.g. "waiting for idle") */
      waiting?: string;
      /** outgoing, backoff: recipients per SMTP host since the previous heartbeat (deltas, for metrics) */
      deliveries?: Record<string, DeliveryCounts>;
      /**
       * outgoing, backoff: inject-to-acceptance latencies since the previous heartbeat, as
       * [seconds, recipients] pairs (one pair per SMTP transaction that got 250 for its recipients)
       */
      latencies?: Array<[number, number]>;
    };

/** Recipients an SMTP host accepted, and refused temporarily or permanently. */
export interface DeliveryCounts {
  accepted: number;
  temporary: number;
  permanent: number;
}

/** Exit codes a worker uses so the master knows whether to restart it. */
export const WorkerExit = {
  /** clean stop (signal or --once) */
  OK: 0,
  /** unexpected failure: restart with backoff */
  SOFTWARE: 70,
  /** bad command line: do not restart */
  USAGE: 64,
  /** invalid config: do not restart until the config changes */
  CONFIG: 78,
} as const;

/** How often a worker sends a heartbeat, ms. */
export const HEARTBEAT_MS = 1000;

/**
 * Set (to "1") in the environment of a worker that the master gives its settings over IPC: the worker
 * asks with `settings?` instead of reading the config, and takes every later SettingsMessage as a
 * reload (as it would take SIGHUP). Without it, or without a channel, a worker reads the config file.
 */
export const SETTINGS_ENV = "QRUNNER_SETTINGS_IPC";

/**
 * Master to worker: the config and lists in force, validated by the master (the worker loads neither
 * yaml nor zod). Sent in answer to `settings?`, and on every accepted reload in place of SIGHUP.
 * Plain JSON: the lists travel as [address, list] pairs.
 */
export interface SettingsMessage {
  type: "settings";
  config: Config;
  lists: Array<[string, ListConfig]>;
}

export function settingsMessage(s: {
  config: Config;
  lists: ReadonlyMap<string, ListConfig>;
}): SettingsMessage {
  return { type: "settings", config: s.config, lists: [...s.lists] };
}

export function isSettingsMessage(m: unknown): m is SettingsMessage {
  return (
    typeof m === "object" &&
    m !== null &&
    (m as { type?: unknown }).type === "settings" &&
    typeof (m as { config?: unknown }).config === "object" &&
    Array.isArray((m as { lists?: unknown }).lists)
  );
}

/**
 * Master to worker, cluster mode: the worker's slices may be worked for `ms` more milliseconds, or
 * (when given, and it wins) until `until` on the machine's monotonic clock (util/clock.ts), which a
 * message delayed in the channel cannot stretch.
 */
export interface LeaseMessage {
  type: "lease";
  ms: number;
  until?: number;
}

export function isLeaseMessage(m: unknown): m is LeaseMessage {
  if (typeof m !== "object" || m === null) return false;
  const l = m as { type?: unknown; ms?: unknown; until?: unknown };
  return (
    l.type === "lease" && typeof l.ms === "number" && (l.until === undefined || typeof l.until === "number")
  );
}
