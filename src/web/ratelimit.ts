/**
 * The login rate limit: failed logins are counted per client address and per account name in a
 * sliding window; past the limit, logins from that address (or to that account) are refused without
 * checking the password until the window has passed. Bounded memory: at most `maxKeys` keys, the
 * oldest forgotten first.
 */
export interface RateLimitOptions {
  /** failures allowed per window, per address */
  perIp?: number;
  /** failures allowed per window, per account */
  perAccount?: number;
  windowMs?: number;
  maxKeys?: number;
  now?: () => number;
}

export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  private readonly perIp: number;
  private readonly perAccount: number;
  readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(opts: RateLimitOptions = {}) {
    this.perIp = opts.perIp ?? 20;
    this.perAccount = opts.perAccount ?? 5;
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.maxKeys = opts.maxKeys ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  private recent(key: string, now: number): number[] {
    const times = (this.failures.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (times.length === 0) this.failures.delete(key);
    else this.failures.set(key, times);
    return times;
  }

  /** May this address try to log in to this account now? */
  allowed(ip: string, account: string): boolean {
    const now = this.now();
    return (
      this.recent(`ip:${ip}`, now).length < this.perIp &&
      this.recent(`acct:${account.toLowerCase()}`, now).length < this.perAccount
    );
  }

  /** A failed login. */
  failed(ip: string, account: string): void {
    const now = this.now();
    for (const key of [`ip:${ip}`, `acct:${account.toLowerCase()}`]) {
      const times = this.recent(key, now);
      // keep no more than the limit needs: a flood adds nothing to memory
      if (times.length < Math.max(this.perIp, this.perAccount)) times.push(now);
      this.failures.delete(key);
      this.failures.set(key, times);
    }
    while (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  /** A successful login clears the account's count (not the address's). */
  succeeded(account: string): void {
    this.failures.delete(`acct:${account.toLowerCase()}`);
  }
}
