/**
 * What keeps LMTP clients from holding the listener (issue 15): a cap on a connection's whole length
 * and on its transactions (then 421 and the connection is closed; the idle timeout alone is reset by
 * any command, junk included), and a budget of message bytes held in memory by all connections
 * together (past it a message gets 452 and the MTA retries it later).
 */

/** One connection's count of transactions and whether it outlived its time. */
interface SessionState {
  transactions: number;
  inData: boolean;
  expired: boolean;
  timer: NodeJS.Timeout;
}

export class SessionLimits {
  private readonly sessions = new Map<string, SessionState>();

  /**
   * @param onExpired called when a connection outlives `maxSessionMs` outside DATA: close it with 421
   *   (inside DATA it is closed after that message's replies, see dataEnded)
   */
  constructor(
    private readonly maxSessionMs: number,
    private readonly maxTransactions: number,
    private readonly onExpired: (id: string) => void,
  ) {}

  opened(id: string): void {
    const timer = setTimeout(() => {
      const s = this.sessions.get(id);
      if (!s) return;
      s.expired = true;
      if (!s.inData) this.onExpired(id);
    }, this.maxSessionMs);
    timer.unref();
    this.sessions.set(id, { transactions: 0, inData: false, expired: false, timer });
  }

  closed(id: string): void {
    const s = this.sessions.get(id);
    if (s) clearTimeout(s.timer);
    this.sessions.delete(id);
  }

  /** At MAIL: null when the transaction may start, else the text of the 421 that ends the session. */
  beginTransaction(id: string): string | null {
    const s = this.sessions.get(id);
    if (!s) return null;
    if (s.expired) return `session longer than ${Math.round(this.maxSessionMs / 1000)} s; reconnect`;
    if (++s.transactions > this.maxTransactions)
      return `more than ${this.maxTransactions} transactions in one session; reconnect`;
    return null;
  }

  dataStarted(id: string): void {
    const s = this.sessions.get(id);
    if (s) s.inData = true;
  }

  /** After a message's replies: true when the session expired meanwhile (close it now). */
  dataEnded(id: string): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    s.inData = false;
    return s.expired;
  }

  close(): void {
    for (const s of this.sessions.values()) clearTimeout(s.timer);
    this.sessions.clear();
  }
}

/** Message bytes held in memory by every connection together. */
export class ByteBudget {
  private held = 0;

  constructor(readonly limit: number) {}

  get available(): number {
    return this.limit - this.held;
  }

  /** Reserve `n` bytes; false (nothing reserved) when that would pass the limit. */
  take(n: number): boolean {
    if (this.held + n > this.limit) return false;
    this.held += n;
    return true;
  }

  give(n: number): void {
    this.held = Math.max(0, this.held - n);
  }
}
