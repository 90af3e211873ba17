/**
 * Host health as a circuit breaker, shared by every worker through the state directory.
 *
 * A host goes down on its first host error (cannot connect, timeout, refused session such as a 421
 * greeting, TLS or authentication failure): no transaction can get through it until that changes.
 * While down it is probed: the first probe is due 1s after the outage began, and each probe round
 * that fails doubles the interval, up to `probe_max`. The first success brings it back up.
 *
 * One JSON file per host, `<state>/hosts/<id>.json`, replaced atomically; read-modify-write is
 * serialised across processes with a lock beside the file. A host without a file is up.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import lockfile from "proper-lockfile";
import { writeFileAtomic } from "../util/atomic.js";
import { HealthStoreError } from "./errors.js";
import type { HostError } from "./outcome.js";
import {
  freshRecord,
  hostFileName,
  hostsDir,
  isAvailable,
  readHostHealth,
  readRecord,
  type HostHealthRecord,
} from "./health-record.js";

// the record's shape and file helpers live in health-record.ts; callers import them from here too
export {
  freshRecord,
  hostFileName,
  hostsDir,
  isAvailable,
  readHostHealth,
  type HostHealthRecord,
  type HostState,
} from "./health-record.js";

export interface FailureOutcome {
  /** this failure took the host from up to down: log "cannot reach host" now, not for every message */
  outageStarted: boolean;
  record: HostHealthRecord;
}

export interface SuccessOutcome {
  /** this success ended an outage: log "host is back" */
  recovered: boolean;
  record: HostHealthRecord;
}

export interface HostHealthStoreOptions {
  /** `smtp.probe_max` in ms: the longest interval between probes of a down host (default 30s) */
  probeMax?: number;
  /** the first probe interval in ms (default 1s) */
  probeMin?: number;
  /** clock, ms epoch (tests) */
  now?: () => number;
  /**
   * How long a record saying "up" (or no record) read from disk is trusted (ms, default 250): delivery
   * checks its host before and after every message, and a host that went down meanwhile costs one
   * failed attempt. A record saying "down" is never trusted from memory: another worker's probe may
   * have brought the host back, and routing on a stale outage would send mail to the fallback while a
   * primary is up. Changes made through this store are seen at once; 0 reads the file every time.
   */
  cacheMs?: number;
}

/** How long a claimed probe keeps the other workers off a down host (outgoing and backoff both claim). */
export const PROBE_HOLD_MS = 60_000;

export class HostHealthStore {
  readonly dir: string;
  readonly #probeMax: number;
  readonly #probeMin: number;
  readonly #now: () => number;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, { record: HostHealthRecord | undefined; at: number }>();
  #dirReady = false;

  constructor(stateDir: string, opts: HostHealthStoreOptions = {}) {
    this.dir = hostsDir(stateDir);
    this.#probeMax = opts.probeMax ?? 30_000;
    this.#probeMin = Math.min(opts.probeMin ?? 1000, this.#probeMax);
    this.#now = opts.now ?? Date.now;
    this.#cacheMs = opts.cacheMs ?? 250;
  }

  /** The host's record; a host never recorded is up. */
  async get(id: string): Promise<HostHealthRecord> {
    return (await this.#read(id)) ?? freshRecord(id, this.#now());
  }

  /** The record on disk (undefined: none), or an "up" one read or written less than `cacheMs` ago. */
  async #read(id: string): Promise<HostHealthRecord | undefined> {
    // the real clock, not the injectable one: the cache is about file reads, not about host state
    const now = Date.now();
    const hit = this.#cache.get(id);
    if (hit && now - hit.at < this.#cacheMs) return hit.record;
    const record = await readRecord(this.#file(id), id);
    this.#remember(id, record, now);
    return record;
  }

  #remember(id: string, record: HostHealthRecord | undefined, at: number): void {
    if (this.#cacheMs > 0 && (record === undefined || record.state === "up"))
      this.#cache.set(id, { record, at });
    else this.#cache.delete(id);
  }

  /** Every recorded host, by id. */
  async all(): Promise<HostHealthRecord[]> {
    return readHostHealth(path.dirname(this.dir));
  }

  /** Is the host usable now (up, or its probe is due)? */
  async available(id: string): Promise<boolean> {
    return isAvailable(await this.get(id), this.#now());
  }

  /** Record a host error (any kind takes the host down); tells whether it started an outage. */
  async markFailure(id: string, error: HostError | string): Promise<FailureOutcome> {
    const message = typeof error === "string" ? error : error.message;
    const kind = typeof error === "string" ? null : error.kind;
    let outageStarted = false;
    const record = await this.#update(id, (r, now) => {
      const next: HostHealthRecord = {
        ...r,
        consecutiveFailures: r.consecutiveFailures + 1,
        lastError: message,
        lastErrorKind: kind,
        lastErrorAt: now,
      };
      if (r.state === "up") {
        outageStarted = true;
        return {
          ...next,
          state: "down",
          since: now,
          probeInterval: this.#probeMin,
          nextProbe: now + this.#probeMin,
          probeStarted: null,
        };
      }
      // one failed probe round doubles the interval; failures of transactions that were already under
      // way when the round was scheduled (now < nextProbe, no claimed probe) only count
      if (r.probeStarted !== null || r.nextProbe === null || now >= r.nextProbe) {
        const interval = Math.min((r.probeInterval ?? this.#probeMin) * 2, this.#probeMax);
        return { ...next, probeInterval: interval, nextProbe: now + interval, probeStarted: null };
      }
      return next;
    });
    return { outageStarted, record };
  }

  /** Record a transaction that got through (any reply from a working session counts). */
  async markSuccess(id: string): Promise<SuccessOutcome> {
    // the common case, a host that is up, costs at most one small read (none within cacheMs) and no write
    const current = await this.#read(id);
    if (!current || current.state === "up") {
      return { recovered: false, record: current ?? freshRecord(id, this.#now()) };
    }
    let recovered = false;
    const record = await this.#update(id, (r, now) => {
      if (r.state === "up") return { ...r, lastSuccess: now };
      recovered = true;
      return {
        ...r,
        state: "up",
        since: now,
        consecutiveFailures: 0,
        lastSuccess: now,
        nextProbe: null,
        probeInterval: null,
        probeStarted: null,
      };
    });
    return { recovered, record };
  }

  /**
   * For a down host whose probe is due: claim the probe for this worker, so the others keep waiting
   * for up to `holdMs` while it runs. True when the caller may send through the host now: it was
   * brought back up meanwhile (by another worker's probe), or this caller holds its probe (then
   * markFailure or markSuccess settles it). Optional: without claims every worker may probe once due.
   */
  async claimProbe(id: string, holdMs: number): Promise<boolean> {
    let claimed = false;
    await this.#update(id, (r, now) => {
      if (r.state === "up") claimed = true;
      if (r.state !== "down" || r.nextProbe === null || now < r.nextProbe) return r;
      claimed = true;
      return { ...r, nextProbe: now + holdMs, probeStarted: now };
    });
    return claimed;
  }

  #file(id: string): string {
    return path.join(this.dir, hostFileName(id));
  }

  async #update(
    id: string,
    change: (r: HostHealthRecord, now: number) => HostHealthRecord,
  ): Promise<HostHealthRecord> {
    const file = this.#file(id);
    try {
      if (!this.#dirReady) {
        await mkdir(this.dir, { recursive: true, mode: 0o700 });
        this.#dirReady = true;
      }
      const release = await lockfile.lock(file, {
        realpath: false,
        stale: 10_000,
        retries: { retries: 50, minTimeout: 5, maxTimeout: 100 },
        // a lock held for milliseconds cannot really be compromised; never throw from a timer
        onCompromised: () => undefined,
      });
      try {
        const now = this.#now();
        const before = (await readRecord(file, id)) ?? freshRecord(id, now);
        const after = change(before, now);
        if (after !== before) await writeFileAtomic(file, JSON.stringify(after, null, 2) + "\n");
        this.#remember(id, after, Date.now());
        return after;
      } finally {
        await release().catch(() => undefined);
      }
    } catch (err) {
      if (err instanceof HealthStoreError) throw err;
      throw new HealthStoreError(`cannot update host health in ${this.dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}
