/**
 * What each LMTP connection did, logged once when it closes. Relaying at rate, one info line per
 * message would be most of the log (and its cost): each message is logged at debug, and at info one
 * line per connection sums them up (an MTA keeps a connection for many messages, at most
 * `max_session` long).
 */
import type { Logger } from "../util/log.js";
import type { LmtpOutcome } from "./transaction.js";

interface Tally {
  readonly remote: string;
  readonly openedAt: number;
  messages: number;
  bytes: number;
  recipients: Partial<Record<LmtpOutcome, number>>;
}

export class SessionTally {
  private readonly sessions = new Map<string, Tally>();

  opened(id: string, remote: string): void {
    this.sessions.set(id, { remote, openedAt: Date.now(), messages: 0, bytes: 0, recipients: {} });
  }

  /** A message's DATA was read (stored or not). */
  message(id: string, size: number): void {
    const t = this.sessions.get(id);
    if (!t) return;
    t.messages++;
    t.bytes += size;
  }

  outcome(id: string, outcome: LmtpOutcome, recipients: number): void {
    const t = this.sessions.get(id);
    if (t) t.recipients[outcome] = (t.recipients[outcome] ?? 0) + recipients;
  }

  /** The connection closed: one line for it (at debug when it carried nothing). */
  closed(id: string, log: Logger): void {
    const t = this.sessions.get(id);
    if (!t) return;
    this.sessions.delete(id);
    const line = {
      session: id,
      remote: t.remote,
      ms: Date.now() - t.openedAt,
      messages: t.messages,
      bytes: t.bytes,
      recipients: t.recipients,
    };
    if (t.messages > 0 || Object.keys(t.recipients).length > 0) log.info(line, "LMTP session ended");
    else log.debug(line, "LMTP session ended");
  }

  clear(): void {
    this.sessions.clear();
  }
}
