/**
 * The `queue list --shape` tables of the queues page, computed at most every `ttlMs` per queue and
 * shared by every viewer: a shape reads each entry's metadata (about 0.2 ms of CPU per entry), and the
 * console's pages refresh themselves every few seconds, in the master's own process. At most
 * `maxEntries` entries (the oldest) are counted.
 */
import { eachSummary, listNames } from "../queue/inspect.js";
import { ShapeCounter, type QueueShape } from "../queue/shape.js";

export interface CachedShape {
  shape: QueueShape;
  /** more entries than were counted */
  cut: boolean;
  /** ms epoch when counted */
  at: number;
}

export class ShapeCache {
  private readonly cache = new Map<string, Promise<CachedShape>>();

  constructor(
    readonly ttlMs = 30_000,
    readonly maxEntries = 5_000,
  ) {}

  get(root: string, queue: string, now: number): Promise<CachedShape> {
    const key = `${root}\0${queue}`;
    const hit = this.cache.get(key);
    if (hit) {
      // a count in progress or fresh enough is shared; a stale one is replaced
      return hit.then((c) => (now - c.at < this.ttlMs ? c : this.count(key, root, queue, now)));
    }
    return this.count(key, root, queue, now);
  }

  private count(key: string, root: string, queue: string, now: number): Promise<CachedShape> {
    const p = (async () => {
      const names = await listNames(root, queue);
      const counter = new ShapeCounter(queue, "recipients");
      for await (const e of eachSummary(root, queue, names.slice(0, this.maxEntries))) counter.add(e, now);
      return { shape: counter.result(10), cut: names.length > this.maxEntries, at: now };
    })();
    this.cache.set(key, p);
    // a failed count is not kept: the next view tries again
    void p.catch(() => this.cache.delete(key));
    return p;
  }
}
