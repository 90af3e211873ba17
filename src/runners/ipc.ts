/**
 * Messages a worker sends its master over the IPC channel (child_process `fork`/`spawn` with 'ipc').
 * A worker started by hand has no channel and sends nothing.
 */
export type WorkerMessage =
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
