/**
 * What the receivers saw, against what the demo sent: one counter per (post, member), so that every
 * delivery is checked (none missing, none twice) in a few hundred kilobytes rather than a map of
 * strings per recipient.
 */

export interface HostCounts {
  transactions: number;
  recipients: number;
}

export class Tally {
  private readonly posts = new Map<string, number>();
  private readonly members = new Map<string, number>();
  /** deliveries per (post, member), saturating at 255 */
  private readonly counts: Uint8Array;
  readonly hosts = new Map<string, HostCounts>();
  /** distinct (post, member) pairs delivered at least once */
  delivered = 0;
  /** deliveries beyond the first of a (post, member) pair */
  duplicates = 0;
  /** deliveries of anything else (notices to the owner, say) */
  other = 0;

  constructor(postIds: readonly string[], memberAddresses: readonly string[], hostNames: readonly string[]) {
    postIds.forEach((id, i) => this.posts.set(id, i));
    memberAddresses.forEach((a, j) => this.members.set(a.toLowerCase(), j));
    this.counts = new Uint8Array(postIds.length * memberAddresses.length);
    for (const h of hostNames) this.hosts.set(h, { transactions: 0, recipients: 0 });
  }

  /** every (post, member) pair */
  get expected(): number {
    return this.counts.length;
  }

  /** pairs not delivered (yet) */
  get missing(): number {
    return this.expected - this.delivered;
  }

  record(host: string, messageId: string, recipients: readonly string[]): void {
    const h = this.hosts.get(host) ?? { transactions: 0, recipients: 0 };
    this.hosts.set(host, h);
    h.transactions++;
    h.recipients += recipients.length;
    const i = this.posts.get(messageId);
    for (const r of recipients) {
      const j = this.members.get(r.toLowerCase());
      if (i === undefined || j === undefined) {
        this.other++;
        continue;
      }
      const k = i * this.members.size + j;
      const c = this.counts[k] ?? 0;
      if (c === 0) this.delivered++;
      else this.duplicates++;
      if (c < 255) this.counts[k] = c + 1;
    }
  }

  /** The (Message-ID, member) pairs never delivered, at most `limit` of them, for the report. */
  missingPairs(postIds: readonly string[], memberAddresses: readonly string[], limit = 5): string[] {
    const out: string[] = [];
    for (let k = 0; k < this.counts.length && out.length < limit; k++) {
      if (this.counts[k] === 0) {
        const i = Math.floor(k / memberAddresses.length);
        out.push(`${postIds[i] ?? "?"} ${memberAddresses[k % memberAddresses.length] ?? "?"}`);
      }
    }
    return out;
  }
}
