/**
 * The work behind `qrunner queue unshunt` and the web console's unshunt button: each shunted entry goes
 * back to the queue it failed in (`shuntedFrom`, incoming when unrecorded) with a fresh crash count.
 * The successor is written durably (`enqueueMany`, same id) before the shunted file is removed, so a
 * crash leaves the entry in shunt, in its queue, or in both: never nowhere.
 */
import type { EntrySummary } from "./inspect.js";
import { Switchboard } from "./switchboard.js";
import { QUEUE_NAMES } from "./types.js";

/** A `.wip` in shunt older than this was left by a crashed unshunt (no runner serves shunt). */
const ABANDONED_MS = 10 * 60_000;

export interface Unshunted {
  id: string;
  /** the queue it went back to */
  to: string;
}

/**
 * Return the queued entries among `targets` (summaries of shunt entries) to their queues; entries in
 * progress or gone meanwhile are left out. Calls `moved` after each entry is durably back.
 */
export async function unshuntEntries(
  root: string,
  targets: readonly EntrySummary[],
  moved: (u: Unshunted) => void = () => undefined,
): Promise<Unshunted[]> {
  const shunt = await Switchboard.open({ root, queue: "shunt" });
  const boards = new Map<string, Switchboard>();
  const done: Unshunted[] = [];
  try {
    await shunt.recoverAbandoned(ABANDONED_MS);
    for (const t of targets) {
      if (t.queue !== "shunt" || t.state !== "queued") continue;
      const entry = await shunt.take(t.name);
      if (!entry) continue;
      const origin = returnQueue(entry.meta.shuntedFrom);
      let target = boards.get(origin);
      if (!target) boards.set(origin, (target = await Switchboard.open({ root, queue: origin })));
      // a fresh start: Mailman keeps the crash count, so unshunted mail went straight back to bad
      const { shuntedFrom: _f, shuntReason: _r, ...rest } = entry.meta;
      await target.enqueueMany([{ message: entry.message, meta: { ...rest, recoveries: 0 }, id: entry.id }]);
      await shunt.finish(entry);
      const u = { id: entry.id, to: origin };
      done.push(u);
      moved(u);
    }
  } finally {
    shunt.close();
    for (const b of boards.values()) b.close();
  }
  return done;
}

/** The queue a shunted entry goes back to: a runner's queue named in its metadata, else incoming. */
export function returnQueue(shuntedFrom: string | undefined): string {
  const ok = (QUEUE_NAMES as readonly string[]).filter((q) => q !== "shunt" && q !== "bad");
  return shuntedFrom !== undefined && ok.includes(shuntedFrom) ? shuntedFrom : "incoming";
}
