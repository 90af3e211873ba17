/**
 * The master's Prometheus metrics, in a Registry of their own (never prom-client's global one).
 *
 * Two kinds of numbers: those pushed to the master as they happen (worker heartbeats: entries handled
 * and failed, deliveries per host, inject-to-acceptance latencies; LMTP outcomes), kept as counters
 * and a histogram; and those read on scrape (queue depths and ages, host state, worker state and
 * restarts, held posts, bouncing and disabled members), computed by ./sources.ts with a short cache.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { DeliveryCounts, WorkerMessage } from "../protocol/worker.js";
import type { LmtpOutcome } from "../intake/transaction.js";
import { Sources, type SourceOptions } from "./sources.js";

type Heartbeat = Extract<WorkerMessage, { type: "heartbeat" }>;

/** The worker a heartbeat came from: its plan position and its process. */
export interface HeartbeatOrigin {
  /** the plan's stable key of the worker position */
  key: string;
  runner: string;
  slice: string;
  pid: number;
}

/** Seconds from intake to the 250 of the SMTP host: sub-second on a healthy site, days in backoff. */
export const LATENCY_BUCKETS = [
  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400, 432_000,
];

export class QrunnerMetrics {
  readonly registry = new Registry();
  private readonly handled: Counter<"runner" | "slice">;
  private readonly failed: Counter<"runner" | "slice">;
  private readonly latency: Histogram<"runner">;
  private readonly deliveries: Counter<"host">;
  private readonly failures: Counter<"host" | "kind">;
  private readonly lmtp: Counter<"result">;
  /** per worker position: the process and the counts its last heartbeat said (they start over per process) */
  private readonly lastBeat = new Map<string, { pid: number; handled: number; failed: number }>();
  /** per worker position: restarts seen, so that the counter survives a position being replaced */
  private readonly restartsSeen = new Map<string, { last: number; total: number }>();
  private readonly sources: Sources;

  constructor(opts: SourceOptions) {
    const registers = [this.registry];
    this.sources = new Sources(opts);
    this.handled = new Counter({
      name: "qrunner_entries_handled_total",
      help: "Queue entries a runner finished (handled or passed on), by runner and slice",
      labelNames: ["runner", "slice"],
      registers,
    });
    this.failed = new Counter({
      name: "qrunner_entries_failed_total",
      help: "Queue entries a runner could not handle (shunted, or kept for a retry), by runner and slice",
      labelNames: ["runner", "slice"],
      registers,
    });
    this.latency = new Histogram({
      name: "qrunner_delivery_latency_seconds",
      help: "From intake (meta.received) to the SMTP host's 250, per accepted recipient, by delivering runner",
      labelNames: ["runner"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.deliveries = new Counter({
      name: "qrunner_deliveries_total",
      help: "Recipients an SMTP host accepted",
      labelNames: ["host"],
      registers,
    });
    this.failures = new Counter({
      name: "qrunner_delivery_failures_total",
      help: "Recipients an SMTP host refused or could not take, by kind (temporary: retried; permanent: bounced)",
      labelNames: ["host", "kind"],
      registers,
    });
    this.lmtp = new Counter({
      name: "qrunner_lmtp_recipients_total",
      help: "LMTP recipients by result: queued, unknown (550), invalid (554), tempfail (451), too-big (552)",
      labelNames: ["result"],
      registers,
    });
    this.defineScraped(registers);
  }

  /** A worker's heartbeat: its counts since it started (made monotonic here) and its deltas. */
  heartbeat(from: HeartbeatOrigin, hb: Heartbeat): void {
    const labels = { runner: from.runner, slice: from.slice };
    const prev = this.lastBeat.get(from.key);
    const same = prev !== undefined && prev.pid === from.pid;
    // a new process counts from 0 again; a count that went down can only mean that too
    const dh = same && hb.handled >= prev.handled ? hb.handled - prev.handled : hb.handled;
    const df = same && hb.failed >= prev.failed ? hb.failed - prev.failed : hb.failed;
    this.lastBeat.set(from.key, { pid: from.pid, handled: hb.handled, failed: hb.failed });
    if (dh > 0) this.handled.inc(labels, dh);
    if (df > 0) this.failed.inc(labels, df);
    // seen once, so that the series exist (at 0) from the first heartbeat on
    if (!same) {
      this.handled.inc(labels, 0);
      this.failed.inc(labels, 0);
    }
    for (const [host, c] of Object.entries(hb.deliveries ?? {})) this.delivered(host, c);
    for (const [seconds, n] of hb.latencies ?? []) {
      if (!Number.isFinite(seconds) || !(n > 0)) continue;
      // prom-client observes one value at a time; n is at most smtp.max_recipients
      for (let i = 0; i < Math.min(n, 100_000); i++) this.latency.observe({ runner: from.runner }, seconds);
    }
  }

  /** One LMTP recipient's (or a whole transaction's) outcome. */
  lmtpOutcome(result: LmtpOutcome, recipients: number): void {
    if (recipients > 0) this.lmtp.inc({ result }, recipients);
  }

  /** The text exposition, with the scraped values refreshed (from a cache of at most cacheMs). */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private delivered(host: string, c: DeliveryCounts): void {
    this.deliveries.inc({ host }, Math.max(0, c.accepted));
    if (c.temporary > 0) this.failures.inc({ host, kind: "temporary" }, c.temporary);
    if (c.permanent > 0) this.failures.inc({ host, kind: "permanent" }, c.permanent);
  }

  /** Gauges (and the restarts counter) filled from ./sources.ts when Prometheus scrapes. */
  private defineScraped(registers: Registry[]): void {
    const sources = this.sources;
    const restartsSeen = this.restartsSeen;
    new Gauge({
      name: "qrunner_queue_entries",
      help: "Entries queued (.qf) in a queue directory, by queue and slice (the slices of that queue's workers)",
      labelNames: ["queue", "slice"],
      registers,
      async collect() {
        this.reset();
        for (const s of await sources.queues()) this.set({ queue: s.queue, slice: s.slice }, s.queued);
      },
    });
    new Gauge({
      name: "qrunner_queue_in_progress",
      help: "Entries being handled (.wip), by queue and slice",
      labelNames: ["queue", "slice"],
      registers,
      async collect() {
        this.reset();
        for (const s of await sources.queues()) this.set({ queue: s.queue, slice: s.slice }, s.inProgress);
      },
    });
    new Gauge({
      name: "qrunner_queue_oldest_age_seconds",
      help: "Age of the oldest entry by its file name's time (backoff: since it fell due), 0 when empty, by queue and slice",
      labelNames: ["queue", "slice"],
      registers,
      async collect() {
        this.reset();
        for (const s of await sources.queues())
          this.set({ queue: s.queue, slice: s.slice }, s.oldestAgeSeconds);
      },
    });
    new Gauge({
      name: "qrunner_host_up",
      help: "SMTP host state from the shared health record: 1 up, 0 down",
      labelNames: ["host", "role"],
      registers,
      async collect() {
        this.reset();
        for (const h of await sources.hosts()) this.set({ host: h.host, role: h.role }, h.up ? 1 : 0);
      },
    });
    new Gauge({
      name: "qrunner_worker_ready",
      help: "1 when the worker is running and ready, 0 otherwise (starting, backoff, stalled, gave up, ...)",
      labelNames: ["runner", "slice"],
      registers,
      collect() {
        this.reset();
        for (const w of sources.workers())
          this.set({ runner: w.runner, slice: w.slice }, w.state === "ready" ? 1 : 0);
      },
    });
    new Counter({
      name: "qrunner_worker_restarts_total",
      help: "Worker restarts by the master after a crash or a stall, by runner and slice",
      labelNames: ["runner", "slice"],
      registers,
      collect() {
        for (const w of sources.workers()) {
          const key = `${w.runner} ${w.slice}`;
          const seen = restartsSeen.get(key) ?? { last: 0, total: 0 };
          // a position replaced by a config edit counts from 0 again: keep adding
          seen.total += w.restarts >= seen.last ? w.restarts - seen.last : w.restarts;
          seen.last = w.restarts;
          restartsSeen.set(key, seen);
        }
        this.reset();
        for (const [key, seen] of restartsSeen) {
          const [runner, slice] = key.split(" ");
          this.inc({ runner: runner ?? "", slice: slice ?? "" }, seen.total);
        }
      },
    });
    new Gauge({
      name: "qrunner_list_held_posts",
      help: "Posts held for moderation, by list",
      labelNames: ["list"],
      registers,
      async collect() {
        this.reset();
        for (const l of await sources.lists()) this.set({ list: l.list }, l.held);
      },
    });
    new Gauge({
      name: "qrunner_list_bouncing_members",
      help: "Enabled members with a bounce score above 0, by list",
      labelNames: ["list"],
      registers,
      async collect() {
        this.reset();
        for (const l of await sources.lists()) this.set({ list: l.list }, l.bouncing);
      },
    });
    new Gauge({
      name: "qrunner_list_disabled_members",
      help: "Members whose delivery is disabled, by list and reason (bounces: the bounce score reached the threshold)",
      labelNames: ["list", "reason"],
      registers,
      async collect() {
        this.reset();
        for (const l of await sources.lists()) {
          this.set({ list: l.list, reason: "bounces" }, 0);
          for (const [reason, n] of Object.entries(l.disabled)) this.set({ list: l.list, reason }, n);
        }
      },
    });
    new Gauge({
      name: "qrunner_list_unrecognised_bounces",
      help: "Bounces to the list whose recipient could not be recognised, as counted in its state",
      labelNames: ["list"],
      registers,
      async collect() {
        this.reset();
        for (const l of await sources.lists()) this.set({ list: l.list }, l.unrecognisedBounces);
      },
    });
  }
}
