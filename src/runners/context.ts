/** What a runner is given: the config in force, the lists, a logger, the queues, a stop signal. */
import type { Logger } from "pino";
import type { RunnerName } from "../config/schema.js";
import { Switchboard } from "../queue/switchboard.js";
import type { Slice } from "../queue/slice.js";
import { SparePool } from "../queue/spares.js";
import type { Settings } from "../protocol/worker.js";
import type { DeliveryObserver } from "./delivery-tally.js";

/**
 * Whole-space Switchboards of the queues a runner hands entries to, opened on first use. They share
 * one pool of recycled files, so the entries this runner finishes become the files of those it writes
 * (`false` with `queue.recycle: false`: every entry file is created and unlinked).
 */
export class Queues {
  private readonly open = new Map<string, Promise<Switchboard>>();
  readonly spares: SparePool | false;

  constructor(
    private readonly root: string,
    private readonly logger: Logger,
    recycle = true,
  ) {
    this.spares = recycle ? new SparePool(root) : false;
  }

  get(queue: string): Promise<Switchboard> {
    let sb = this.open.get(queue);
    if (!sb) {
      sb = Switchboard.open({ root: this.root, queue, logger: this.logger, spares: this.spares });
      this.open.set(queue, sb);
      // a failed open is not cached: the next call tries again
      sb.catch(() => this.open.delete(queue));
    }
    return sb;
  }

  /** Safe to call twice. */
  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    for (const p of all.reverse()) (await p.catch(() => null))?.close();
  }
}

export interface RunnerContext {
  readonly runner: RunnerName;
  readonly slice: Slice;
  /** the settings in force right now (a getter: reloads replace them) */
  settings(): Settings;
  readonly logger: Logger;
  readonly queues: Queues;
  readonly signal: AbortSignal;
  /** delivery outcomes for the master's metrics (set by the worker; absent in tools and tests) */
  readonly deliveries?: DeliveryObserver;
}
