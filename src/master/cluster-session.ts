/**
 * This node's session: one etcd lease with a TTL, kept alive by this node, to which its record and
 * every slice it holds are attached. etcd deletes them all when the lease runs out.
 *
 * Fencing without clocks. A keep-alive that succeeds was received by etcd after we sent it, so etcd
 * keeps the lease until at least (send time + TTL), measured by etcd's own clock (a leader change only
 * extends leases). The session therefore counts its time from the *send* of the last keep-alive that
 * succeeded, on this machine's monotonic clock, and is trusted only until FENCE_FRACTION of the TTL
 * after it: past that point the node stops its workers, long before another node can take the slices.
 * Nothing here compares one machine's clock with another's.
 *
 * A session ends only when etcd says the lease is gone (expired or revoked); failed keep-alives (etcd
 * unreachable, no quorum) only let the fence pass, and a keep-alive that gets through again in time
 * restores the trust, the slices still ours.
 */
import { EtcdLeaseInvalidError, type Lease } from "etcd3";
import { monotonicMs } from "../util/clock.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { ClusterEtcdError } from "./cluster-errors.js";
import type { EtcdHandle } from "./cluster-etcd.js";

/** The master trusts its slices this far into the TTL after the last keep-alive sent that succeeded. */
export const FENCE_FRACTION = 0.5;
/** A keep-alive is sent this often (as a fraction of the TTL): four chances before the fence. */
const KEEPALIVE_FRACTION = 1 / 8;

export interface SessionOptions {
  etcd: EtcdHandle;
  ttlMs: number;
  logger: Logger;
  /** etcd says the lease is gone: everything attached to it (record, slices) is gone too */
  onEnded: (why: string) => void;
  /** a keep-alive went through after failures (the fence may have passed meanwhile) */
  onRenewed?: () => void;
}

export class EtcdSession {
  /** the lease id, as etcd prints it (decimal) */
  readonly id: string;
  private confirmedAt: number;
  private ended = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private failing = false;

  private constructor(
    private readonly opts: SessionOptions,
    private readonly lease: Lease,
    id: string,
    grantSentAt: number,
  ) {
    this.id = id;
    this.confirmedAt = grantSentAt;
  }

  /** Grant a lease of the TTL and start keeping it alive. Throws ClusterEtcdError when etcd refuses or cannot be reached. */
  static async open(opts: SessionOptions): Promise<EtcdSession> {
    const sentAt = monotonicMs();
    const lease = opts.etcd.ns.lease(Math.round(opts.ttlMs / 1000), {
      autoKeepAlive: false,
      deadline: opts.etcd.deadline(),
    });
    // a failed grant also emits `lost`; the rejection below is what reports it
    lease.on("lost", () => undefined);
    let id: string;
    try {
      id = await lease.grant();
    } catch (err) {
      throw new ClusterEtcdError(`cannot get a lease from etcd: ${describeError(err)}`, { cause: err });
    }
    const s = new EtcdSession(opts, lease, id, sentAt);
    const every = Math.max(200, Math.floor(opts.ttlMs * KEEPALIVE_FRACTION));
    s.timer = setInterval(() => void s.renew(), every);
    s.timer.unref();
    return s;
  }

  /** Monotonic ms until which the slices of this session may be worked (see FENCE_FRACTION). */
  fenceAt(fraction: number = FENCE_FRACTION): number {
    return this.ended ? -Infinity : this.confirmedAt + this.opts.ttlMs * fraction;
  }

  /** May the slices of this session be worked now? */
  trusted(now: number = monotonicMs()): boolean {
    return !this.ended && now < this.fenceAt();
  }

  /** etcd has said the lease is gone. */
  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * One keep-alive now. Several may be on their way at once (one per tick, none waits for another):
   * a slow answer still counts, and a member that does not answer does not hold the next ones up.
   */
  async renew(): Promise<void> {
    if (this.ended || this.closed) return;
    const sentAt = monotonicMs();
    try {
      // past this deadline an answer could no longer move the fence: its send time would be behind it
      await this.lease.keepaliveOnce({ deadline: new Date(Date.now() + this.opts.ttlMs * FENCE_FRACTION) });
      if (this.closed) return;
      this.confirmedAt = Math.max(this.confirmedAt, sentAt);
      if (this.failing) {
        this.failing = false;
        this.opts.logger.info({ lease: this.id }, "etcd lease renewed again");
        this.opts.onRenewed?.();
      }
    } catch (err) {
      if (this.closed) return;
      if (err instanceof EtcdLeaseInvalidError) {
        this.end("etcd says the lease expired or was revoked");
        return;
      }
      // logged once per failure run; the fence is what protects the slices
      if (!this.failing)
        this.opts.logger.error(
          { lease: this.id, err: describeError(err) },
          "cannot renew the etcd lease; the slices stop being worked if this lasts",
        );
      this.failing = true;
    }
  }

  private end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.stopTimer();
    this.opts.onEnded(why);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Revoke the lease: etcd deletes this node's record and slices at once (call once the workers are
   * stopped). Safe to call twice; a revoke that fails leaves the lease to run out.
   */
  async revoke(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTimer();
    if (this.ended) return;
    try {
      await this.lease.revoke({ deadline: this.opts.etcd.deadline() });
    } catch (err) {
      this.opts.logger.warn(
        { lease: this.id, err: describeError(err) },
        "cannot revoke the etcd lease; it runs out by itself",
      );
    }
  }

  /** Stop keeping the lease alive without revoking it (it runs out). Safe to call twice. */
  close(): void {
    this.closed = true;
    this.stopTimer();
    this.lease.release();
  }
}
