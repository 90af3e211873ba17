/**
 * What the metrics read when Prometheus scrapes: queue directories (depth, work in progress and the
 * oldest entry, per slice of each queue's workers), host health records, and each list's state and
 * held posts. Only names are listed, never entry files opened; each kind of reading is cached for
 * `cacheMs` so that several gauges (and scrapers) share one pass.
 */
import { opendir, readdir } from "node:fs/promises";
import type { Config } from "../config/schema.js";
// not the delivery index: that would load the SMTP transport (nodemailer) into the master
import { hostId } from "../delivery/hosts.js";
import { readHostHealth } from "../delivery/health.js";
import { effectiveScore, policyFromList } from "../lists/bounces/score.js";
import { HeldStore } from "../lists/held.js";
import { effectiveMembers, memberState } from "../lists/members.js";
import type { ListConfig } from "../lists/schema.js";
import { ListStateStore } from "../lists/state.js";
import { parseName } from "../queue/names.js";
import { formatSlice, inSlice, parseSlice, WHOLE, type Slice } from "../queue/slice.js";
import { QUEUE_NAMES } from "../queue/types.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import path from "node:path";

/** What the metrics need of a worker (the master's WorkerStatus has it all). */
export interface WorkerView {
  runner: string;
  slice: string;
  state: string;
  restarts: number;
}

export interface SourceOptions {
  /** the config and lists in force (a getter: reloads replace them) */
  settings: () => {
    config: Pick<Config, "qfiles" | "state" | "smtp">;
    lists: ReadonlyMap<string, ListConfig>;
  };
  workers: () => readonly WorkerView[];
  /** how long one reading serves scrapes, ms (default 5000) */
  cacheMs?: number;
  logger?: Logger;
}

export interface QueueSliceStats {
  queue: string;
  slice: string;
  queued: number;
  inProgress: number;
  /** seconds since the oldest entry's name time; 0 when the slice is empty or the entry is not due yet */
  oldestAgeSeconds: number;
}

export interface HostStats {
  host: string;
  role: "primary" | "fallback";
  up: boolean;
}

export interface ListStats {
  list: string;
  held: number;
  /** enabled members whose bounce score is above 0 (and not stale) */
  bouncing: number;
  /** disabled members by reason */
  disabled: Record<string, number>;
  unrecognisedBounces: number;
}

class Cached<T> {
  private at = 0;
  private value: Promise<T> | null = null;
  constructor(
    private readonly ms: number,
    private readonly load: () => Promise<T>,
  ) {}

  get(): Promise<T> {
    const now = Date.now();
    if (!this.value || now - this.at > this.ms) {
      this.at = now;
      this.value = this.load();
    }
    return this.value;
  }
}

export class Sources {
  private readonly queueCache: Cached<QueueSliceStats[]>;
  private readonly hostCache: Cached<HostStats[]>;
  private readonly listCache: Cached<ListStats[]>;

  constructor(private readonly opts: SourceOptions) {
    const ms = opts.cacheMs ?? 5000;
    this.queueCache = new Cached(ms, () => this.readQueues());
    this.hostCache = new Cached(ms, () => this.readHosts());
    this.listCache = new Cached(ms, () => this.readLists());
  }

  queues(): Promise<QueueSliceStats[]> {
    return this.queueCache.get();
  }

  hosts(): Promise<HostStats[]> {
    return this.hostCache.get();
  }

  lists(): Promise<ListStats[]> {
    return this.listCache.get();
  }

  workers(): readonly WorkerView[] {
    return this.opts.workers();
  }

  /** The slices a queue's workers run (the whole space for queues without a runner, or none running). */
  private slicesOf(queue: string): Slice[] {
    const specs = new Set(
      this.opts
        .workers()
        .filter((w) => w.runner === queue)
        .map((w) => w.slice),
    );
    const slices: Slice[] = [];
    for (const spec of specs) {
      try {
        slices.push(parseSlice(spec));
      } catch {
        // a worker's slice always parses (the master made it); skip anything else
      }
    }
    if (slices.length === 0) return [WHOLE];
    return slices.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  }

  private async readQueues(): Promise<QueueSliceStats[]> {
    const root = this.opts.settings().config.qfiles;
    const now = Date.now();
    const out: QueueSliceStats[] = [];
    for (const queue of QUEUE_NAMES) {
      const slices = this.slicesOf(queue);
      const stats = slices.map((s) => ({ queued: 0, inProgress: 0, oldest: Infinity, slice: s }));
      try {
        for await (const e of await opendir(path.join(root, queue), { bufferSize: 1024 })) {
          const p = parseName(e.name);
          if (!p || p.ext === "tmp") continue;
          const st = stats.find((s) => inSlice(s.slice, p.sha1));
          if (!st) continue;
          if (p.ext === "qf") st.queued++;
          else st.inProgress++;
          if (p.time < st.oldest) st.oldest = p.time;
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT")
          this.opts.logger?.warn({ queue, err: describeError(err) }, "metrics: cannot list queue");
      }
      for (const s of stats)
        out.push({
          queue,
          slice: formatSlice(s.slice),
          queued: s.queued,
          inProgress: s.inProgress,
          oldestAgeSeconds: s.oldest === Infinity ? 0 : Math.max(0, (now - s.oldest) / 1000),
        });
    }
    return out;
  }

  private async readHosts(): Promise<HostStats[]> {
    const { config } = this.opts.settings();
    const hosts = [
      ...config.smtp.hosts.map((h) => ({ id: hostId(h), role: "primary" as const })),
      ...config.smtp.fallback.map((h) => ({ id: hostId(h), role: "fallback" as const })),
    ];
    try {
      const records = await readHostHealth(
        config.state,
        hosts.map((h) => h.id),
      );
      return hosts.map((h, i) => ({ host: h.id, role: h.role, up: records[i]?.state !== "down" }));
    } catch (err) {
      this.opts.logger?.warn({ err: describeError(err) }, "metrics: cannot read host health");
      return [];
    }
  }

  private async readLists(): Promise<ListStats[]> {
    const { config, lists } = this.opts.settings();
    const now = Date.now();
    const out: ListStats[] = [];
    for (const list of lists.values()) {
      try {
        const state = await new ListStateStore(config.state, list.address).read();
        const staleAfter = policyFromList(list.bounce).staleAfter;
        let bouncing = 0;
        const disabled: Record<string, number> = {};
        for (const addr of effectiveMembers(list, state)) {
          const m = memberState(state, addr);
          if (!m) continue;
          if (m.disabled) disabled[m.disabled.reason] = (disabled[m.disabled.reason] ?? 0) + 1;
          else if (effectiveScore(m, now, staleAfter) > 0) bouncing++;
        }
        out.push({
          list: list.address,
          held: await countHeld(new HeldStore(config.state, list.address).dir),
          bouncing,
          disabled,
          unrecognisedBounces: state.unrecognisedBounces,
        });
      } catch (err) {
        this.opts.logger?.warn(
          { list: list.address, err: describeError(err) },
          "metrics: cannot read list state",
        );
      }
    }
    return out;
  }
}

/** Held posts, counting those a moderator command is acting on right now (still held until it is done). */
async function countHeld(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith(".held") || n.endsWith(".claimed")).length;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}
