/**
 * The backoff runner: entries wait here until they fall due (the file name's time), then go out
 * through a healthy primary host chosen by weight, or, only while every primary is down, through the
 * fallback hosts. A failure schedules the next retry (backoff.schedule, with jitter). After
 * backoff.max_age without progress the remaining recipients fail permanently: bounce events, and one
 * notice to the list owners. An entry that made progress is measured from its last progress.
 */
import type { Logger } from "pino";
import { PROBE_HOLD_MS, hostId, isAvailable, routeHost, type HostHealthRecord } from "../delivery/index.js";
import type { Entry } from "../queue/types.js";
import { formatDuration } from "../util/units.js";
import type { Handler, HandleResult } from "./base.js";
import type { RunnerContext } from "./context.js";
import { DeliveryStep, Transports, healthStore, type AnyHost } from "./delivery-step.js";
import { deliveryGaveUp } from "../lists/notice-texts.js";
import { decodeHeaderText } from "../lists/header-text.js";
import { getHeader, messageId } from "../lists/message.js";
import { queueNotice } from "../lists/queue-notice.js";
import { ownerAddress } from "../lists/addresses.js";
import { takeReplySlot } from "../lists/replies.js";
import { ListStateStore } from "../lists/state.js";

export class BackoffRunner implements Handler {
  private readonly transports: Transports;
  private readonly health;
  private readonly step: DeliveryStep;

  constructor(private readonly ctx: RunnerContext) {
    this.transports = new Transports(ctx);
    const { config } = ctx.settings();
    this.transports.checkAll([...config.smtp.hosts, ...config.smtp.fallback]);
    this.health = healthStore(ctx);
    this.step = new DeliveryStep(ctx, this.transports, this.health);
  }

  async handle(entry: Entry, log: Logger): Promise<HandleResult> {
    const { config } = this.ctx.settings();
    if (entry.meta.recipients.length === 0) return;
    const now = Date.now();
    const progressAt = entry.meta.extra?.["progressAt"];
    const since = Math.max(entry.meta.received, typeof progressAt === "number" ? progressAt : 0);
    if (now - since > config.backoff.max_age) return this.giveUp(entry, now - since, log);

    const records = new Map<string, HostHealthRecord>();
    for (const h of [...config.smtp.hosts, ...config.smtp.fallback])
      records.set(hostId(h), await this.health.get(hostId(h)));
    // a down host whose probe is due is tried only as that probe, claimed as the outgoing runner
    // does: without the claim every entry in hand would be sent to it at once
    const lostClaim = new Set<string>();
    let host: AnyHost | undefined;
    for (;;) {
      host = routeHost<AnyHost>({
        hosts: config.smtp.hosts,
        fallback: config.smtp.fallback,
        available: (id) => {
          const r = records.get(id);
          return !lostClaim.has(id) && (r === undefined || isAvailable(r, now));
        },
      });
      if (!host || records.get(hostId(host))?.state !== "down") break;
      if (await this.health.claimProbe(hostId(host), PROBE_HOLD_MS)) break;
      lostClaim.add(hostId(host));
    }
    if (!host) {
      // nothing reachable: wait for the earliest probe, without counting an attempt
      const probes = [...records.values()].map((r) => r.nextProbe ?? now + config.smtp.probe_max);
      const due = Math.max(now + 1000, Math.min(...probes));
      log.debug({ due: new Date(due).toISOString() }, "no host reachable; waiting for the next probe");
      return { release: { notBefore: due } };
    }
    const id = hostId(host);
    const l = log.child({ host: id, fallback: !config.smtp.hosts.includes(host as never) });
    const result = await this.step.attempt(entry, host, entry.meta.recipients, l);
    await this.step.dispose(entry, result.failed, id, l, {
      progressed: result.accepted.length > 0,
      retryNow: result.hostError !== undefined,
    });
  }

  private async giveUp(entry: Entry, age: number, log: Logger): Promise<void> {
    const { lists } = this.ctx.settings();
    const last = entry.meta.failures.at(-1)?.message ?? "no delivery attempt succeeded";
    const reason = `gave up after ${formatDuration(age)} without delivery: ${last}`;
    await this.step.bounceEvents(
      entry,
      entry.meta.recipients.map((recipient) => ({ recipient, kind: "permanent" as const, message: reason })),
      "backoff",
      log,
    );
    const list = entry.meta.list ? lists.get(entry.meta.list.toLowerCase()) : undefined;
    // a notice that itself could not be delivered is not announced again (no notice loops)
    // at most one give-up notice per list an hour: a long outage must not flood the owners with one
    // notice per entry (a post is several entries); the bounce events above carry every recipient
    if (list && entry.meta.kind !== "notice" && (await this.noticeSlot(list.address, ownerAddress(list)))) {
      const subject = getHeader(entry.message, "subject");
      const id = messageId(entry.message);
      await queueNotice(
        this.ctx.queues,
        list.address,
        deliveryGaveUp(list, {
          recipients: entry.meta.recipients,
          ageMs: age,
          lastError: last,
          ...(subject !== undefined ? { subject: decodeHeaderText(subject) } : {}),
          ...(id !== undefined ? { messageId: id } : {}),
        }),
        { entry, index: 0 },
      );
    }
    log.warn({ recipients: entry.meta.recipients.length, reason }, "delivery given up");
  }

  private noticeSlot(listAddress: string, owner: string): Promise<boolean> {
    const { config } = this.ctx.settings();
    return new ListStateStore(config.state, listAddress).update((state) =>
      takeReplySlot(state, owner, Date.now(), 1),
    );
  }

  async close(): Promise<void> {
    this.transports.close();
  }
}
