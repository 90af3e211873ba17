/**
 * The slice assignment of one cluster node: which slices it holds in etcd under its session (and
 * whether workers may run on each, or it is being given up), squared with what etcd says, and the
 * balancing that moves it towards its weighted share: give extras up gracefully (their workers stop
 * first, then the keys go), take idle ones back, claim free ones. The session, the fence and the
 * timers that drive this are the node's (cluster.ts).
 */
import { balance, type NodeView } from "./cluster-balance.js";
import type { ClusterView, EtcdRegistry } from "./cluster-registry.js";
import type { EtcdSession } from "./cluster-session.js";

export const sorted = (ks: Iterable<number>): number[] => [...ks].sort((a, b) => a - b);

/** What a balancing step needs of the node. */
export interface StepContext {
  readonly session: EtcdSession;
  readonly weight: number;
  /** stopping, or the session no longer trusted: claim nothing more */
  stale(): boolean;
  /** the node is stopping: the master stops every worker itself */
  paused(): boolean;
  /** re-plan the workers for the active slices; resolves once workers of dropped slices have exited */
  replan(): Promise<void>;
  /** is a worker process serving one of these slices still running? */
  busy(slices: readonly number[]): boolean;
  /** is a worker of the plan stopped because its slices were not trusted when it was due to start? */
  heldBack(): boolean;
  /** log a change of the held slices */
  announce(msg: string, slices: Iterable<number>): void;
}

export class SliceAssignment {
  /** slices held in etcd under the session; true: workers may run on it (not being given up) */
  private readonly held = new Map<number, boolean>();

  constructor(
    private readonly registry: EtcdRegistry,
    private readonly me: string,
    private readonly count: number,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** Every slice held, in order, those being given up included. */
  all(): number[] {
    return sorted(this.held.keys());
  }

  /** The slices held that workers may run on. */
  working(): number[] {
    return sorted([...this.held].filter(([, on]) => on).map(([k]) => k));
  }

  /** Are all of these slices held and not being given up? */
  allWorking(slices: readonly number[]): boolean {
    return slices.every((k) => this.held.get(k) === true);
  }

  /** Forget these slices (their keys are gone, or the session is). */
  drop(slices: readonly number[]): void {
    for (const k of slices) this.held.delete(k);
  }

  /** Forget every slice; returns them. */
  clear(): number[] {
    const all = this.all();
    this.held.clear();
    return all;
  }

  /**
   * What etcd says the session holds is what it holds: a claim whose answer was lost is adopted, and
   * the slices whose keys are gone (deleted by an operator) are returned for the node to give up.
   */
  reconcile(view: ClusterView, session: EtcdSession): { gone: number[]; adopted: number[] } {
    const ours = new Set<number>();
    for (const [k, h] of view.holders) if (h.lease === session.id) ours.add(k);
    const gone = [...this.held.keys()].filter((k) => !ours.has(k));
    const adopted = [...ours].filter((k) => !this.held.has(k));
    for (const k of adopted) this.held.set(k, true);
    return { gone, adopted };
  }

  /** One balancing step towards this node's share, the held slices already squared with `view`. */
  async balance(view: ClusterView, ctx: StepContext): Promise<void> {
    const others: NodeView[] = view.nodes
      .filter((n) => n.node !== this.me)
      .map((n) => ({
        name: n.node,
        weight: n.weight,
        slices: [...view.holders].filter(([, h]) => h.node === n.node).map(([k]) => k),
      }));
    const plan = balance({
      me: this.me,
      nodes: [...others, { name: this.me, weight: ctx.weight, slices: this.all() }],
      count: this.count,
    });
    if (plan.release.length) {
      await this.releaseGracefully(plan.release, ctx);
      return;
    }
    // held slices not being released may run (again): a release undone, or one postponed
    const idle = [...this.held].filter(([, on]) => !on).map(([k]) => k);
    if (idle.length) {
      for (const k of idle) this.held.set(k, true);
      ctx.announce("slices claimed", idle);
      await ctx.replan();
      return;
    }
    // a worker due to start in a moment the session was not trusted (a keep-alive late) was held
    // back; trusted again, start it
    if (plan.claim.length === 0 && ctx.heldBack()) {
      await ctx.replan();
      return;
    }
    const took: number[] = [];
    for (const k of plan.claim) {
      if (took.length >= plan.want || ctx.stale()) break;
      if (await this.registry.claim(ctx.session, k)) {
        this.held.set(k, true);
        took.push(k);
      }
    }
    if (took.length) {
      ctx.announce("slices claimed", took);
      await ctx.replan();
    }
  }

  /** Stop the workers of these slices (they finish the entries in hand), then give the slices up. */
  private async releaseGracefully(slices: readonly number[], ctx: StepContext): Promise<void> {
    for (const k of slices) if (this.held.has(k)) this.held.set(k, false);
    await ctx.replan();
    // stopping: the master stops every worker and close() revokes the session afterwards
    if (ctx.paused()) return;
    // a worker that could not be stopped keeps its slice until the next step
    const done = slices.filter((k) => !ctx.busy([k]) && this.held.get(k) === false);
    if (done.length === 0) return;
    // no worker runs on them any more: that is when this node stops working them
    ctx.announce("slices released", done);
    for (const k of done) {
      await this.registry.release(ctx.session, k);
      this.held.delete(k);
    }
  }
}
