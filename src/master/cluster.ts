/**
 * Cluster mode in the master: this node's etcd session and its record in etcd, and the loop that
 * drives the balancing of its slices (cluster-slices.ts) towards its share and the fence
 * (cluster-fence.ts). The master runs workers only on the slices `active()` returns; it is told when to
 * re-plan and when workers must die at once.
 *
 *   every lease/8     a keep-alive of the session (cluster-session.ts); the fence is counted from the
 *                     send of the last one that succeeded, on the monotonic clock
 *   every lease/8     balance (and at once on any change etcd reports through the watch): release
 *                     extras gracefully (re-plan without them, wait for their workers to exit, then
 *                     delete their keys), or claim free slices up to the share (a transaction that
 *                     succeeds only on a slice nobody holds); a lost session is replaced
 *   every 250 ms      the fence's watchdog (cluster-fence.ts)
 */
import os from "node:os";
import type { Watcher } from "etcd3";
import type { ClusterConfig } from "../config/schema.js";
import { monotonicMs } from "../util/clock.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { ClusterEtcdError } from "./cluster-errors.js";
import { openEtcd, type EtcdHandle } from "./cluster-etcd.js";
import { EtcdRegistry } from "./cluster-registry.js";
import { Fence } from "./cluster-fence.js";
import { EtcdSession } from "./cluster-session.js";
import { SliceAssignment, sorted } from "./cluster-slices.js";
import { HELD_BACK, specSlices, type ClusterHooks } from "./cluster-workers.js";

const WATCHDOG_MS = 250;
/** How long `join` keeps trying to reach etcd before the start fails (exit 75: try again). */
const JOIN_PATIENCE_MS = 30_000;

export interface ClusterOptions {
  config: ClusterConfig;
  logger: Logger;
}

export class ClusterNode {
  readonly name: string;
  readonly count: number;
  readonly leaseMs: number;
  private weight: number;
  private readonly etcdConfig: ClusterConfig["etcd"];
  private readonly startedAt = Date.now();
  private readonly log: Logger;
  private readonly registry: EtcdRegistry;
  private session: EtcdSession | null = null;
  private readonly slices: SliceAssignment;
  private readonly fence: Fence;
  private hooks: ClusterHooks | null = null;
  private watcher: Watcher | null = null;
  private timers: NodeJS.Timeout[] = [];
  private stepping: Promise<void> | null = null;
  private again = false;
  private failing = false;
  private paused = false;
  private closed = false;

  private constructor(
    private readonly etcd: EtcdHandle,
    config: ClusterConfig,
    logger: Logger,
  ) {
    this.name = config.node ?? os.hostname();
    this.count = config.slices;
    this.leaseMs = config.lease;
    this.weight = config.weight;
    this.etcdConfig = config.etcd;
    this.log = logger.child({ node: this.name });
    this.registry = new EtcdRegistry(etcd, this.name);
    this.slices = new SliceAssignment(this.registry, this.name, this.count);
    this.fence = new Fence({
      leaseMs: this.leaseMs,
      slices: this.slices,
      session: () => this.session,
      hooks: () => this.hooks,
      killWorkers: (ks, why) => this.killWorkers(ks, why),
    });
  }

  /**
   * Join the cluster: check that this node's slice count matches the cluster's, open a session and
   * register under it (refused when a live node has this name). Throws a ClusterError otherwise.
   */
  static async join(opts: ClusterOptions): Promise<ClusterNode> {
    const { config } = opts;
    const callMs = Math.max(1000, Math.min(5000, Math.floor(config.lease / 2)));
    const etcd = await openEtcd(config.etcd, callMs);
    const node = new ClusterNode(etcd, config, opts.logger);
    const giveUpAt = monotonicMs() + JOIN_PATIENCE_MS;
    for (;;) {
      try {
        await node.registry.agreeSettings(node.count);
        await node.openSession();
        break;
      } catch (err) {
        const retry = !(err instanceof Error && "exitCode" in err) && monotonicMs() < giveUpAt;
        if (!retry) {
          etcd.close();
          if (err instanceof Error && "exitCode" in err) throw err;
          throw new ClusterEtcdError(
            `cannot join the cluster through etcd at ${config.etcd.endpoints.join(", ")}: ${describeError(err)}`,
            { cause: err },
          );
        }
        if (!node.failing) node.log.warn({ err: describeError(err) }, "cannot reach etcd yet; trying again");
        node.failing = true;
        await new Promise((r) => setTimeout(r, callMs));
      }
    }
    node.failing = false;
    node.log.info(
      {
        slices: node.count,
        lease: node.leaseMs,
        weight: node.weight,
        etcd: config.etcd.endpoints,
        prefix: config.etcd.prefix,
        session: node.session?.id,
      },
      "joined the cluster",
    );
    return node;
  }

  private record(): { weight: number; host: string; pid: number; startedAt: number } {
    return { weight: this.weight, host: os.hostname(), pid: process.pid, startedAt: this.startedAt };
  }

  /** A new session and this node's record under it; its slices start empty. */
  private async openSession(): Promise<void> {
    const session = await EtcdSession.open({
      etcd: this.etcd,
      ttlMs: this.leaseMs,
      logger: this.log,
      onEnded: (why) => this.sessionEnded(session, why),
      onRenewed: () => this.kick(),
    });
    try {
      await this.registry.register(session, this.record());
    } catch (err) {
      await session.revoke();
      throw err;
    }
    this.session = session;
    this.fence.lift();
  }

  /** Start balancing; the hooks act on the master's workers. */
  start(hooks: ClusterHooks): void {
    this.hooks = hooks;
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(Math.floor(this.leaseMs / 8), () => this.kick());
    every(Math.min(WATCHDOG_MS, Math.floor(this.leaseMs / 16)), () => this.fence.watch());
    void this.registry
      .watch(
        // any change may move the shares; a slice of ours deleted by someone else is dropped by the step
        () => this.kick(),
        (err) => this.log.warn({ err }, "etcd watch failed; balancing on the timer only"),
      )
      .then((w) => {
        if (this.closed) void w?.cancel();
        else this.watcher = w;
      });
    this.kick();
  }

  /** The slices workers may run on now. */
  active(): number[] {
    if (!this.fence.trusted()) return [];
    return this.slices.working();
  }

  /** May a worker with this slice spec run (every slice of it held, active and trusted)? */
  allows(sliceSpec: string): boolean {
    const ks = specSlices(sliceSpec);
    return ks.length > 0 && this.fence.trusted() && this.slices.allWorking(ks);
  }

  /** Why a worker with this slice spec may not start now (HELD_BACK), or null. */
  holdBack(sliceSpec: string): string | null {
    return this.allows(sliceSpec) ? null : HELD_BACK;
  }

  /**
   * A valid config edit: a new weight applies at once (the shares follow at the next balancing step);
   * the node name, slices, lease and etcd settings only at the next start.
   */
  edited(next: ClusterConfig | undefined): void {
    if (!next) {
      this.log.warn("`cluster` removed: this node stays in the cluster until the next start");
      return;
    }
    if (
      (next.node ?? os.hostname()) !== this.name ||
      next.slices !== this.count ||
      next.lease !== this.leaseMs ||
      JSON.stringify(next.etcd) !== JSON.stringify(this.etcdConfig)
    )
      this.log.warn("`cluster` changes other than `weight` take effect at the next start");
    if (next.weight === this.weight) return;
    this.log.info({ from: this.weight, to: next.weight }, "node weight changed");
    this.weight = next.weight;
    const s = this.session;
    if (s)
      void this.registry
        .update(s, this.record())
        .then(() => this.kick())
        .catch((err: unknown) =>
          this.log.warn({ err: describeError(err) }, "cannot write the new weight to etcd"),
        );
  }

  /** Stop balancing (no more claims or releases); the session is kept alive and watched until close(). */
  pause(): void {
    this.paused = true;
  }

  /** Revoke the session (etcd drops this node's record and slices at once). Call once the workers are stopped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.paused = true;
    this.closed = true;
    await this.stepping;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.watcher?.cancel().catch(() => undefined);
    const held = this.slices.clear();
    // the workers are stopped already: logged before the keys go, as another node may take them then
    if (held.length) this.log.info({ slices: held }, "slices released");
    await this.session?.revoke();
    this.etcd.close();
    this.log.info("left the cluster");
  }

  private kick(): void {
    if (this.paused) return;
    if (this.stepping) {
      this.again = true;
      return;
    }
    this.stepping = this.step()
      .then(
        () => {
          if (this.failing) this.log.info("etcd reachable again");
          this.failing = false;
        },
        (err: unknown) => {
          // logged once per failure run: the fence is what protects the slices
          if (!this.failing) this.log.error({ err: describeError(err) }, "cluster balancing step failed");
          this.failing = true;
        },
      )
      .finally(() => {
        this.stepping = null;
        if (this.again && !this.paused) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async step(): Promise<void> {
    const hooks = this.hooks;
    if (!hooks) return;
    if (!this.session || this.session.isEnded) {
      await this.openSession();
      this.log.info({ session: this.session?.id }, "new etcd session");
    }
    const session = this.session;
    if (!session || !session.trusted()) return;
    const view = await this.registry.view();
    if (this.paused || this.session !== session || !session.trusted()) return;
    const { gone, adopted } = this.slices.reconcile(view, session);
    if (gone.length) this.lose(gone, "their keys are gone from etcd");
    if (this.fence.up || adopted.length) {
      // trusted again (a keep-alive got through in time), or a claim we did not hear back from
      this.fence.lift();
      if (this.slices.size) this.announce("slices claimed", this.slices.all());
      await this.replan(hooks);
      return;
    }
    await this.slices.balance(view, {
      session,
      weight: this.weight,
      stale: () => this.paused || !session.trusted(),
      paused: () => this.paused,
      replan: () => this.replan(hooks),
      busy: (ks) => hooks.busy(ks),
      heldBack: () => hooks.heldBack(),
      announce: (msg, ks) => this.announce(msg, ks),
    });
  }

  /**
   * Re-plan the workers, a keep-alive first: starting workers blocks the event loop (a spawn is
   * synchronous, a few hundred ms each on a loaded machine), and a fence counted from a fresh
   * keep-alive does not pass during it.
   */
  private async replan(hooks: ClusterHooks): Promise<void> {
    await this.session?.renew();
    await hooks.replan();
  }

  private announce(msg: string, slices: Iterable<number>): void {
    this.log.info({ slices: sorted(slices), active: this.active(), session: this.session?.id }, msg);
  }

  /** These slices may no longer be worked: kill their workers at once and re-plan without them. */
  private lose(slices: number[], why: string): void {
    this.slices.drop(slices);
    this.killWorkers(slices, why);
  }

  private killWorkers(slices: number[], why: string): void {
    const hooks = this.hooks;
    const working = hooks?.busy(slices) ?? false;
    this.log.error(
      { slices: sorted(slices), why, working, active: this.active() },
      "lost the leases of slices; their workers are killed",
    );
    hooks?.kill(slices);
    if (hooks && !this.closed) void this.replan(hooks);
  }

  /** etcd says the session's lease is gone, and every slice with it. */
  private sessionEnded(session: EtcdSession, why: string): void {
    if (this.session !== session || this.closed) return;
    const slices = this.slices.clear();
    if (slices.length) this.killWorkers(slices, why);
    else this.log.warn({ why }, "etcd session lost");
    this.kick();
  }
}
