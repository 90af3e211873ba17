/**
 * The fence of a cluster node: its slices are trusted only while its etcd session is, counted from
 * the last keep-alive that got through. Every 250 ms a watchdog judges it; past the fence (half the
 * TTL without a successful keep-alive) every worker of the node's slices is SIGKILLed at once, and
 * each worker is sent the monotonic deadline until which its slices stay trustworthy, so that it exits
 * by itself should the master hang. The node (cluster.ts) lifts the fence once etcd answers again.
 */
import { monotonicMs } from "../util/clock.js";
import type { EtcdSession } from "./cluster-session.js";
import { FENCE_FRACTION } from "./cluster-session.js";
import type { SliceAssignment } from "./cluster-slices.js";
import { specSlices, type ClusterHooks } from "./cluster-workers.js";

/** A worker's own deadline runs this far into the TTL, a little past the master's fence. */
export const WORKER_FENCE_FRACTION = FENCE_FRACTION + 0.1;

/** What the fence watches and acts on: the node's session, slices and workers. */
export interface FencedNode {
  readonly leaseMs: number;
  readonly slices: SliceAssignment;
  session(): EtcdSession | null;
  hooks(): ClusterHooks | null;
  /** kill the workers of these slices at once, logging why */
  killWorkers(slices: number[], why: string): void;
}

export class Fence {
  private passed = false;

  constructor(private readonly node: FencedNode) {}

  /** Has the fence passed (the workers were killed) since it was last lifted? */
  get up(): boolean {
    return this.passed;
  }

  /** The session is trusted again (a fresh one, or a keep-alive got through in time). */
  lift(): void {
    this.passed = false;
  }

  /** May the node's slices be worked now? */
  trusted(now: number = monotonicMs()): boolean {
    const session = this.node.session();
    return !this.passed && session !== null && session.trusted(now);
  }

  /** The watchdog's tick. */
  watch(): void {
    if (!this.passed && this.node.slices.size > 0 && !this.trusted()) {
      // after a blocked event loop, the answer to a keep-alive may be waiting unread: read what has
      // arrived (the I/O phase runs before setImmediate's), then judge
      setImmediate(() => this.judge());
      return;
    }
    this.notifyWorkers();
  }

  /** The watchdog's verdict: past the fence, the workers are killed at once. */
  private judge(): void {
    const now = monotonicMs();
    if (!this.passed && this.node.slices.size > 0 && !this.trusted(now)) {
      this.passed = true;
      const session = this.node.session();
      const since = session ? Math.round(now - (session.fenceAt() - this.node.leaseMs * FENCE_FRACTION)) : 0;
      this.node.killWorkers(
        this.node.slices.all(),
        `no successful etcd keep-alive sent in the last ${since} ms`,
      );
    }
    this.notifyWorkers();
  }

  /** Tell every worker until when its slices stay trustworthy (now, when they are not). */
  private notifyWorkers(): void {
    const hooks = this.node.hooks();
    if (!hooks) return;
    const now = monotonicMs();
    const trusted = this.trusted(now);
    const session = this.node.session();
    const until = trusted && session ? session.fenceAt(WORKER_FENCE_FRACTION) : now;
    hooks.notify((spec) => {
      const ks = specSlices(spec);
      if (ks.length === 0) return null;
      return trusted && this.node.slices.allWorking(ks) ? until : now;
    });
  }
}
