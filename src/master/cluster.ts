/**
 * Cluster mode in the master: this node's leases, its record in the node registry, and the balancing
 * loop that moves it towards its share of the slices. The master runs workers only on the slices this
 * returns from `active()`; it is told when to re-plan and when workers must die at once.
 *
 *   every lease/4     the node record is rewritten (others see us alive) and proper-lockfile refreshes
 *                     each lease's mtime
 *   every lease/8     balance: confirm leases on probation (then re-plan), release extras gracefully
 *                     (re-plan without them, wait for their workers to exit, then release), or claim
 *                     free and stale slices up to the share
 *   every 250 ms      watchdog: a lease not refreshed for half the lease time is lost: its workers are
 *                     SIGKILLed; every worker is sent how long its slices' leases remain trustworthy,
 *                     so it exits by itself should the master hang
 */
import os from "node:os";
import { performance } from "node:perf_hooks";
import type { ClusterConfig } from "../config/schema.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { balance, type NodeView } from "./cluster-balance.js";
import { LeaseManager } from "./cluster-lease.js";
import { specSlices } from "./cluster-workers.js";
import {
  agreeSettings,
  clusterPaths,
  ensureClusterDirs,
  isLive,
  NodeRegistry,
  type ClusterPaths,
} from "./cluster-registry.js";

/** A worker's own deadline runs this much (as a fraction of the lease) past the master's fence. */
const WORKER_GRACE_FRACTION = 0.1;
const WATCHDOG_MS = 250;

export interface ClusterHooks {
  /** re-plan the workers for `active()` now; resolves once workers of dropped slices have exited */
  replan(): Promise<void>;
  /** SIGKILL at once every worker serving one of these slices */
  kill(slices: readonly number[]): void;
  /** is a worker process serving one of these slices still running? */
  busy(slices: readonly number[]): boolean;
  /** send every worker the ms its slices stay trustworthy (null: the worker serves no cluster slice) */
  notify(remainingMs: (sliceSpec: string) => number | null): void;
}

export interface ClusterOptions {
  qfiles: string;
  config: ClusterConfig;
  logger: Logger;
}

const sorted = (ks: readonly number[]): number[] => [...ks].sort((a, b) => a - b);

export class ClusterNode {
  readonly name: string;
  readonly count: number;
  readonly leaseMs: number;
  private weight: number;
  private readonly startedAt = Date.now();
  private readonly log: Logger;
  private readonly leases: LeaseManager;
  private readonly registry: NodeRegistry;
  private hooks: ClusterHooks | null = null;
  private timers: NodeJS.Timeout[] = [];
  private stepping: Promise<void> | null = null;
  private writing: Promise<void> | null = null;
  private writeFailing = false;
  private paused = false;
  private closed = false;

  private constructor(paths: ClusterPaths, config: ClusterConfig, logger: Logger) {
    this.name = config.node ?? os.hostname();
    this.count = config.slices;
    this.leaseMs = config.lease;
    this.weight = config.weight;
    this.log = logger.child({ node: this.name });
    this.leases = new LeaseManager({
      dir: paths.leases,
      node: this.name,
      leaseMs: this.leaseMs,
      logger: this.log,
      onLost: (slices, why) => this.lost(slices, why),
    });
    this.registry = new NodeRegistry(paths, this.name, this.leaseMs);
  }

  /**
   * Join the cluster: create the shared directories, check that this node's settings match the
   * cluster's and that its name is free, and write its record. Throws a ClusterError otherwise.
   */
  static async join(opts: ClusterOptions): Promise<ClusterNode> {
    const paths = clusterPaths(opts.qfiles);
    await ensureClusterDirs(paths);
    await agreeSettings(paths, { slices: opts.config.slices, lease: opts.config.lease });
    const node = new ClusterNode(paths, opts.config, opts.logger);
    await node.registry.checkName();
    await node.writeRecord();
    node.log.info(
      { slices: node.count, lease: node.leaseMs, weight: node.weight, dir: paths.root },
      "joined the cluster",
    );
    return node;
  }

  /** Start balancing; the hooks act on the master's workers. */
  start(hooks: ClusterHooks): void {
    this.hooks = hooks;
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(Math.floor(this.leaseMs / 4), () => void this.writeRecord());
    every(Math.floor(this.leaseMs / 8), () => this.kick());
    every(Math.min(WATCHDOG_MS, Math.floor(this.leaseMs / 16)), () => this.watchdog());
    this.kick();
  }

  /** The slices workers may run on now. */
  active(): number[] {
    return this.leases.active();
  }

  /** May a worker with this slice spec run (every slice of it is leased and active)? */
  allows(sliceSpec: string): boolean {
    const ks = specSlices(sliceSpec);
    return ks.length > 0 && ks.every((k) => this.leases.isActive(k));
  }

  /**
   * A valid config edit: a new weight applies at once (the shares follow at the next balancing step);
   * the node name, slices and lease only at the next start.
   */
  edited(next: ClusterConfig | undefined): void {
    if (!next) {
      this.log.warn("`cluster` removed: this node stays in the cluster until the next start");
      return;
    }
    if (
      (next.node ?? os.hostname()) !== this.name ||
      next.slices !== this.count ||
      next.lease !== this.leaseMs
    )
      this.log.warn(
        "`cluster.node`, `cluster.slices` and `cluster.lease` changes take effect at the next start",
      );
    if (next.weight === this.weight) return;
    this.log.info({ from: this.weight, to: next.weight }, "node weight changed");
    this.weight = next.weight;
    void this.writeRecord();
  }

  /** Stop balancing (no more claims or releases); leases stay refreshed and watched until close(). */
  pause(): void {
    this.paused = true;
  }

  /** Release every lease and remove this node's record. Call once the workers are stopped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.paused = true;
    this.closed = true;
    await this.stepping;
    await this.writing;
    const held = this.leases.held();
    await this.leases.close();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.registry.remove();
    if (held.length) this.log.info({ slices: held }, "slices released");
    this.log.info("left the cluster");
  }

  private kick(): void {
    if (this.paused || this.stepping) return;
    this.stepping = this.step()
      .catch((err: unknown) => this.log.error({ err: describeError(err) }, "cluster balancing step failed"))
      .finally(() => (this.stepping = null));
  }

  private async writeRecord(): Promise<void> {
    if (this.writing || this.closed) return this.writing ?? undefined;
    this.writing = this.registry
      .write({
        weight: this.weight,
        host: os.hostname(),
        pid: process.pid,
        startedAt: this.startedAt,
        slices: this.leases.held(),
        active: this.leases.active(),
      })
      .then(
        () => {
          if (this.writeFailing) this.log.info("node record written again");
          this.writeFailing = false;
        },
        (err: unknown) => {
          // logged once per failure run: the lease watchdog is what protects the slices
          if (!this.writeFailing) this.log.error({ err: describeError(err) }, "cannot write the node record");
          this.writeFailing = true;
        },
      )
      .finally(() => (this.writing = null));
    return this.writing;
  }

  private async step(): Promise<void> {
    const hooks = this.hooks;
    if (!hooks) return;
    const confirmed = await this.leases.confirm();
    if (this.paused) return;
    if (confirmed.length) {
      this.log.info({ slices: sorted(confirmed), active: this.leases.active() }, "slices claimed");
      await this.writeRecord();
      await hooks.replan();
      if (this.paused) return;
    }
    const now = Date.now();
    const others: NodeView[] = (await this.registry.readAll())
      .filter((r) => r.node !== this.name && isLive(r, this.leaseMs, now))
      .map((r) => ({ name: r.node, weight: r.weight, slices: r.slices }));
    if (this.paused) return;
    const held = this.leases.held();
    const plan = balance({
      me: this.name,
      nodes: [...others, { name: this.name, weight: this.weight, slices: held }],
      count: this.count,
    });
    if (plan.release.length) {
      await this.releaseGracefully(plan.release, hooks);
      return;
    }
    // held leases not being released may run (again): a release undone, or one postponed
    const idle = held.filter((k) => this.leases.isConfirmed(k) && !this.leases.isActive(k));
    if (idle.length) {
      for (const k of idle) this.leases.setActive(k, true);
      this.log.info({ slices: sorted(idle), active: this.leases.active() }, "slices claimed");
      await this.writeRecord();
      await hooks.replan();
      return;
    }
    let took = 0;
    for (const k of plan.claim) {
      if (took >= plan.want || this.paused) break;
      try {
        if (await this.leases.acquire(k)) took++;
      } catch (err) {
        this.log.warn({ slice: k, err: describeError(err) }, "cannot take a lease");
      }
    }
    if (took) await this.writeRecord();
  }

  /** Stop the workers of these slices (they finish the entries in hand), then release the leases. */
  private async releaseGracefully(slices: readonly number[], hooks: ClusterHooks): Promise<void> {
    for (const k of slices) this.leases.setActive(k, false);
    await hooks.replan();
    // stopping: the master stops every worker and close() releases the leases afterwards
    if (this.paused) return;
    const done: number[] = [];
    for (const k of slices) {
      // a worker that could not be stopped keeps its lease until the next step
      if (hooks.busy([k]) || this.leases.isActive(k)) continue;
      await this.leases.release(k);
      done.push(k);
    }
    if (done.length) this.log.info({ slices: sorted(done), active: this.leases.active() }, "slices released");
    await this.writeRecord();
  }

  private lost(slices: number[], why: string): void {
    const hooks = this.hooks;
    const working = hooks?.busy(slices) ?? false;
    this.log.error(
      { slices: sorted(slices), why, working, active: this.leases.active() },
      "lost the leases of slices; their workers are killed",
    );
    hooks?.kill(slices);
    void this.writeRecord();
    if (hooks && !this.closed) void hooks.replan();
  }

  private watchdog(): void {
    this.leases.check();
    const hooks = this.hooks;
    if (!hooks) return;
    const now = performance.now();
    const grace = this.leaseMs * WORKER_GRACE_FRACTION;
    hooks.notify((spec) => {
      const ks = specSlices(spec);
      if (ks.length === 0) return null;
      let until = Infinity;
      for (const k of ks) until = Math.min(until, this.leases.fenceAt(k) ?? now - grace);
      return Math.max(0, Math.round(until + grace - now));
    });
  }
}
