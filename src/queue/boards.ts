/**
 * Switchboards opened on first use and kept for the caller's lifetime: a `QueueSource` (as the
 * moderation service and the notices want it) for a process that is not a runner (the web console).
 */
import { Switchboard } from "./switchboard.js";

export class Boards {
  private readonly open = new Map<string, Promise<Switchboard>>();

  constructor(private readonly root: string) {}

  get(queue: string): Promise<Switchboard> {
    let sb = this.open.get(queue);
    if (!sb) {
      sb = Switchboard.open({ root: this.root, queue });
      // a failed open is not cached: the next call tries again
      void sb.catch(() => this.open.delete(queue));
      this.open.set(queue, sb);
    }
    return sb;
  }

  /** Close every switchboard opened. Safe to call twice. */
  close(): void {
    for (const sb of this.open.values())
      void sb.then(
        (s) => s.close(),
        () => undefined,
      );
    this.open.clear();
  }
}
