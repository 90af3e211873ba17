import type { Config } from "../config/schema.js";
import type { ListConfig } from "../lists/schema.js";

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

/** What a delivering runner reports after each attempt; the worker turns it into heartbeat fields. */
export interface DeliveryObserver {
  /** one attempt through `host` of an entry first received at `received` (ms epoch) */
  attempted(host: string, received: number, counts: DeliveryCounts): void;
}

/**
 * Collects delivery outcomes between two heartbeats. The heartbeat carries deltas, so a worker keeps
 * nothing for long: at most one pair per transaction within a second, merged when there are many.
 */
export class DeliveryTally implements DeliveryObserver {
  private counts = new Map<string, DeliveryCounts>();
  private latencies: Array<[number, number]> = [];

  attempted(host: string, received: number, counts: DeliveryCounts): void {
    const c = this.counts.get(host) ?? { accepted: 0, temporary: 0, permanent: 0 };
    c.accepted += counts.accepted;
    c.temporary += counts.temporary;
    c.permanent += counts.permanent;
    this.counts.set(host, c);
    // an entry's received time is set once, at intake; an old or foreign entry without one is skipped
    if (counts.accepted > 0 && received > 0 && this.latencies.length < MAX_LATENCY_PAIRS)
      this.latencies.push([Math.max(0, (Date.now() - received) / 1000), counts.accepted]);
  }

  /** The heartbeat fields for what happened since the last call (none when nothing did). */
  drain(): { deliveries?: Record<string, DeliveryCounts>; latencies?: Array<[number, number]> } {
    const out: { deliveries?: Record<string, DeliveryCounts>; latencies?: Array<[number, number]> } = {};
    if (this.counts.size > 0) out.deliveries = Object.fromEntries(this.counts);
    if (this.latencies.length > 0) out.latencies = this.latencies;
    this.counts = new Map();
    this.latencies = [];
    return out;
  }
}

/** Latency pairs kept between two heartbeats; beyond this (10,000 transactions a second) the rest go uncounted. */
const MAX_LATENCY_PAIRS = 10_000;

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
