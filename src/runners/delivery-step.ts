/**
 * One delivery attempt and what follows from it, shared by the outgoing and backoff runners:
 * accepted recipients are done; temporary failures (4xx, 552, a dropped connection, a host that
 * cannot be reached) wait in `backoff` on their own; permanent failures (5xx) become bounce events
 * for the member in the `bounce` queue. Host errors go to the shared health record, and "cannot
 * reach host" is logged once per outage, not once per message.
 */
import type { Logger } from "pino";
import type { SmtpHostConfig, FallbackHostConfig } from "../config/schema.js";
import { HostHealthStore, HostTransport, deliverBatched, hostId } from "../delivery/index.js";
import type { HostError, RecipientFailure, SendResult } from "../delivery/index.js";
import type { Entry, EntryMeta, FailureRecord } from "../queue/types.js";
import { describeError, PartialProgressError, QueueUnavailableError } from "../util/errors.js";
import type { RunnerContext } from "./context.js";

export type AnyHost = SmtpHostConfig | FallbackHostConfig;

/** Transports by host id, created on first use, closed together. */
export class Transports {
  private readonly byId = new Map<string, HostTransport>();
  constructor(private readonly ctx: RunnerContext) {}

  get(host: AnyHost): HostTransport {
    const id = hostId(host);
    let t = this.byId.get(id);
    if (!t) {
      const { config } = this.ctx.settings();
      t = new HostTransport(host, {
        logger: this.ctx.logger,
        ...(config.smtp.helo !== undefined ? { helo: config.smtp.helo } : {}),
      });
      this.byId.set(id, t);
    }
    return t;
  }

  /**
   * Create the transports of these hosts now: a missing password variable or an unreadable CA file
   * stops the worker at start (MissingSecretError, CaFileError) instead of failing every message.
   */
  checkAll(hosts: readonly AnyHost[]): void {
    for (const h of hosts) this.get(h);
  }

  /** Drop transports of hosts no longer configured (after a config edit). */
  prune(keep: ReadonlySet<string>): void {
    for (const [id, t] of this.byId) {
      if (!keep.has(id)) {
        t.close();
        this.byId.delete(id);
      }
    }
  }

  /** Safe to call twice. */
  close(): void {
    for (const t of [...this.byId.values()].reverse()) t.close();
    this.byId.clear();
  }
}

export function healthStore(ctx: RunnerContext): HostHealthStore {
  const { config } = ctx.settings();
  return new HostHealthStore(config.state, { probeMax: config.smtp.probe_max });
}

/** The wait before retry number `attempt` (1-based), from backoff.schedule (the last repeats), with jitter. */
export function retryDelay(ctx: RunnerContext, attempt: number): number {
  const { schedule, jitter } = ctx.settings().config.backoff;
  const base = schedule[Math.min(Math.max(attempt, 1), schedule.length) - 1] ?? 60_000;
  // spread retries so a recovered host is not hit by every waiting entry at once
  return Math.round(base * (1 - jitter + Math.random() * 2 * jitter));
}

export class DeliveryStep {
  constructor(
    private readonly ctx: RunnerContext,
    private readonly transports: Transports,
    private readonly health: HostHealthStore,
  ) {}

  /** Send `entry` to `recipients` through `host`, and record the host's health. `log` carries the host. */
  async attempt(
    entry: Entry,
    host: AnyHost,
    recipients: readonly string[],
    log: Logger,
  ): Promise<SendResult> {
    const { config } = this.ctx.settings();
    const id = hostId(host);
    const result = await deliverBatched(
      this.transports.get(host),
      { from: entry.meta.sender, to: [...recipients] },
      entry.message,
      config.smtp.max_recipients,
    );
    this.ctx.deliveries?.attempted(id, entry.meta.received, {
      accepted: result.accepted.length,
      temporary: count(result.failed, "temporary"),
      permanent: count(result.failed, "permanent"),
    });
    // the outcome is settled: a health record that cannot be written must not fail the entry (a
    // delivered entry that is shunted or retried would be delivered twice)
    try {
      if (result.hostError) await this.hostFailed(id, result.hostError, log);
      else if ((await this.health.markSuccess(id)).recovered) log.warn("host is reachable again");
    } catch (err) {
      log.error({ err: describeError(err) }, "cannot record host health");
    }
    log.info(
      {
        accepted: result.accepted.length,
        temporary: count(result.failed, "temporary"),
        permanent: count(result.failed, "permanent"),
      },
      "delivery attempt",
    );
    return result;
  }

  /**
   * Record a host error; log it once per outage. The shared record (updated under its lock) tells
   * which failure took the host down: that one worker logs, not every worker that meets the outage.
   */
  async hostFailed(id: string, error: HostError, log: Logger): Promise<void> {
    const f = await this.health.markFailure(id, error);
    if (f.outageStarted)
      log.error({ kind: error.kind, error: error.message }, "cannot reach host; its mail goes to backoff");
  }

  /**
   * Pass the failures on: temporary ones to `backoff` (one entry, due by the schedule), permanent ones
   * to `bounce` as events. Both are durable before this resolves; the caller then finishes `entry`.
   */
  async dispose(
    entry: Entry,
    failed: readonly RecipientFailure[],
    host: string,
    log: Logger,
    opts: { progressed: boolean; retryNow?: boolean },
  ): Promise<void> {
    const passed = new Set<string>();
    try {
      await this.passOn(entry, failed, host, log, opts, passed);
    } catch (err) {
      // some recipients are served (accepted, or already passed on); if the rest cannot be queued
      // now, the entry is kept with only the rest, so that nobody gets it twice when it is retried
      const rest = failed.map((f) => f.recipient).filter((r) => !passed.has(r));
      if (err instanceof QueueUnavailableError && rest.length < entry.meta.recipients.length)
        throw new PartialProgressError(err.message, { recipients: rest }, { cause: err });
      throw err;
    }
  }

  private async passOn(
    entry: Entry,
    failed: readonly RecipientFailure[],
    host: string,
    log: Logger,
    opts: { progressed: boolean; retryNow?: boolean },
    passed: Set<string>,
  ): Promise<void> {
    const now = Date.now();
    const temporary = failed.filter((f) => f.kind === "temporary");
    const permanent = failed.filter((f) => f.kind === "permanent");
    if (temporary.length) {
      // retryNow: no attempt was made (the host was known down), so none is counted and the backoff
      // runner may try a healthy host at once
      const attempts = entry.meta.attempts + (opts.retryNow ? 0 : 1);
      const meta: EntryMeta = {
        ...entry.meta,
        recipients: temporary.map((f) => f.recipient),
        attempts,
        failures: [...entry.meta.failures.slice(-19), ...records(temporary, host, now)],
        extra: { ...(entry.meta.extra ?? {}), ...(opts.progressed ? { progressAt: now } : {}) },
      };
      const due = opts.retryNow ? now : now + retryDelay(this.ctx, attempts);
      const backoff = await this.ctx.queues.get("backoff");
      await backoff.enqueueMany([{ message: entry.message, meta, id: entry.id, notBefore: due }]);
      for (const f of temporary) passed.add(f.recipient);
      log.info(
        { recipients: temporary.length, attempts, due: new Date(due).toISOString() },
        "temporary failure; retry scheduled",
      );
    }
    if (permanent.length) await this.bounceEvents(entry, permanent, host, log);
  }

  /** Permanent failures as bounce events for the list's members, handled by the bounce runner. */
  async bounceEvents(
    entry: Entry,
    failures: readonly RecipientFailure[],
    host: string,
    log: Logger,
  ): Promise<void> {
    if (!entry.meta.list) {
      log.warn(
        { recipients: failures.map((f) => f.recipient) },
        "permanent failure for mail of no list; nothing to score",
      );
      return;
    }
    const now = Date.now();
    const bounce = await this.ctx.queues.get("bounce");
    await bounce.enqueueMany(
      failures.map((f) => ({
        message: Buffer.alloc(0),
        meta: {
          sender: "",
          recipients: [f.recipient],
          list: entry.meta.list ?? "",
          kind: "bounce-event",
          failures: records([f], host, now),
          extra: {
            event: {
              recipient: f.recipient,
              kind: "permanent",
              message: f.message,
              ...(f.code !== undefined ? { code: f.code } : {}),
              // the envelope sender it went out with: a signed probe VERP address makes it a probe's bounce
              sender: entry.meta.sender,
            },
            origin: entry.id,
          },
        },
      })),
    );
    log.warn(
      { recipients: failures.map((f) => `${f.recipient} (${f.code ?? "?"})`) },
      "permanent failure; bounce events queued",
    );
  }
}

function count(failed: readonly RecipientFailure[], kind: RecipientFailure["kind"]): number {
  return failed.reduce((n, f) => n + (f.kind === kind ? 1 : 0), 0);
}

function records(failed: readonly RecipientFailure[], host: string, at: number): FailureRecord[] {
  // one record per distinct reply, listing its recipients: a 500-recipient batch stays small
  const byReply = new Map<string, FailureRecord>();
  for (const f of failed) {
    const key = `${f.kind} ${f.code ?? ""} ${f.message}`;
    const r = byReply.get(key);
    if (r) r.recipients?.push(f.recipient);
    else
      byReply.set(key, {
        at,
        queue: "delivery",
        host,
        kind: f.kind,
        message: f.message,
        recipients: [f.recipient],
        ...(f.code !== undefined ? { code: f.code } : {}),
      });
  }
  return [...byReply.values()];
}
