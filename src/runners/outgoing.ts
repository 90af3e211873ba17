/**
 * The outgoing runner: delivers its slice's entries to its SMTP host. With `instances: auto` worker K
 * of N serves host K, its slice sized by the host's weight; with a fixed number of instances each entry
 * goes to the host its sha1 falls on. While the host is down (a circuit breaker shared through the
 * state directory) entries are not tried against it: they move to `backoff` at once, which delivers
 * them through a healthy host; one worker at a time probes the host when its probe falls due.
 */
import type { Logger } from "pino";
import { PROBE_HOLD_MS, hostForSha1, hostId, isAvailable } from "../delivery/index.js";
import type { Entry } from "../queue/types.js";
import { formatDuration } from "../util/units.js";
import type { Handler, HandleResult } from "./base.js";
import type { RunnerContext } from "./context.js";
import { DeliveryStep, Transports, healthStore, type AnyHost } from "./delivery-step.js";

export class OutgoingRunner implements Handler {
  private readonly transports: Transports;
  private readonly health;
  private readonly step: DeliveryStep;

  constructor(private readonly ctx: RunnerContext) {
    this.transports = new Transports(ctx);
    const { config } = ctx.settings();
    this.transports.checkAll(config.smtp.hosts);
    this.health = healthStore(ctx);
    this.step = new DeliveryStep(ctx, this.transports, this.health);
  }

  /** hosts picked for the log bindings, used again by handle */
  private readonly hosts = new WeakMap<Entry, AnyHost>();

  private hostFor(entry: Entry): AnyHost {
    let host = this.hosts.get(entry);
    if (!host) this.hosts.set(entry, (host = this.pickHost(entry)));
    return host;
  }

  private pickHost(entry: Entry): AnyHost {
    const { config } = this.ctx.settings();
    const hosts = config.smtp.hosts;
    const { slice } = this.ctx;
    // auto: worker K serves host K; in cluster mode slices are leases, not hosts: go by the sha1
    if (
      config.cluster === undefined &&
      config.runners.outgoing.instances === "auto" &&
      slice.count === hosts.length
    )
      return hosts[slice.index] ?? hosts[0]!;
    return hostForSha1(hosts, entry.id);
  }

  bindings(entry: Entry): Record<string, unknown> {
    return { host: hostId(this.hostFor(entry)) };
  }

  async handle(entry: Entry, l: Logger): Promise<HandleResult> {
    if (entry.meta.recipients.length === 0) return;
    const host = this.hostFor(entry);
    const id = hostId(host);
    const record = await this.health.get(id);
    const now = Date.now();
    // down: try only as the one probe that is due, claimed so that workers do not all probe at once
    const usable =
      record.state === "up" ||
      (isAvailable(record, now) && (await this.health.claimProbe(id, PROBE_HOLD_MS)));
    if (!usable) {
      const why = `host ${id} down for ${formatDuration(now - record.since)}: ${record.lastError ?? "unreachable"}`;
      await this.step.dispose(
        entry,
        entry.meta.recipients.map((recipient) => ({ recipient, kind: "temporary" as const, message: why })),
        id,
        l,
        { progressed: false, retryNow: true },
      );
      return;
    }
    const result = await this.step.attempt(entry, host, entry.meta.recipients, l);
    await this.step.dispose(entry, result.failed, id, l, {
      progressed: result.accepted.length > 0,
      // a host error cost no attempt of the recipients: let backoff try a healthy host now
      retryNow: result.hostError !== undefined,
    });
  }

  async close(): Promise<void> {
    this.transports.close();
  }
}
