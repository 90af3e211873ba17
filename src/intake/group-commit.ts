/**
 * Group commit across LMTP transactions: the entries that concurrent transactions (other
 * connections) ask to store in one turn of the event loop are written by one `enqueueMany`: their
 * files written and renamed, then fsynced together with a single directory fsync, instead of one
 * commit each. Every entry is still acknowledged only once the batch is durable; if the batch fails,
 * each of its transactions gets the error (451: the MTA retries).
 */
import type { Switchboard } from "../queue/switchboard.js";
import type { NewEntryMeta } from "../queue/types.js";

interface Pending {
  message: Buffer;
  meta: NewEntryMeta;
  resolve: (id: string) => void;
  reject: (err: unknown) => void;
}

export class GroupCommitter {
  private readonly pending = new Map<Switchboard, Pending[]>();
  private scheduled = false;

  /** Queue one entry into `queue`; resolves with its id once it is durable. */
  enqueue(queue: Switchboard, message: Buffer, meta: NewEntryMeta): Promise<string> {
    return new Promise((resolve, reject) => {
      let list = this.pending.get(queue);
      if (!list) this.pending.set(queue, (list = []));
      list.push({ message, meta, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // after the I/O callbacks of this turn: the transactions whose data ended together
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batches = [...this.pending];
    this.pending.clear();
    for (const [queue, items] of batches) {
      queue.enqueueMany(items).then(
        (ids) => items.forEach((it, i) => it.resolve(ids[i] ?? "")),
        (err: unknown) => items.forEach((it) => it.reject(err)),
      );
    }
  }
}
