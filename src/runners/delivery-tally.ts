import type { DeliveryCounts } from "../protocol/worker.js";

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
