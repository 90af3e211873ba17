/**
 * A qshape-like age histogram of a queue (Postfix's `qshape` is the model): one row per recipient
 * domain (the busiest first) and a TOTAL row; columns are age buckets of 0-5, 5-10, 10-20, 20-40, ...
 * 640-1280 and over 1280 minutes, by the time since the message first reached qrunner.
 *
 * It counts recipients by default (a post fanned out to 300 members of one domain weighs 300 there);
 * in `entries` mode an entry counts once in TOTAL and once in each domain it has recipients in.
 */
import { domainOf, entryAge, matchingRecipients, type EntryFilter } from "./filter.js";
import type { EntrySummary } from "./inspect.js";

/** Upper bounds of the buckets, in minutes; a last bucket holds everything older. */
export const SHAPE_BOUNDS_MIN = [5, 10, 20, 40, 80, 160, 320, 640, 1280] as const;
/** Column labels as qshape prints them: each bucket by its upper bound. */
export const SHAPE_LABELS = [...SHAPE_BOUNDS_MIN.map(String), `${SHAPE_BOUNDS_MIN.at(-1) ?? 0}+`];

export type ShapeUnit = "recipients" | "entries";

export interface ShapeRow {
  /** a recipient domain, "TOTAL", or "(none)" for entries without recipients */
  domain: string;
  total: number;
  /** one count per bucket (SHAPE_LABELS) */
  counts: number[];
}

export interface QueueShape {
  queue: string;
  unit: ShapeUnit;
  buckets: string[];
  total: ShapeRow;
  /** the busiest domains, at most `top` */
  rows: ShapeRow[];
  /** how many domains there were in all */
  domains: number;
}

/** The bucket index for an age in ms. */
export function bucketOf(ageMs: number): number {
  const min = ageMs / 60_000;
  const i = SHAPE_BOUNDS_MIN.findIndex((b) => min < b);
  return i < 0 ? SHAPE_BOUNDS_MIN.length : i;
}

function emptyRow(domain: string): ShapeRow {
  return { domain, total: 0, counts: new Array<number>(SHAPE_LABELS.length).fill(0) };
}

export class ShapeCounter {
  private readonly total = emptyRow("TOTAL");
  private readonly byDomain = new Map<string, ShapeRow>();

  /** `filter.domain`, when given, limits the counted recipients to that domain. */
  constructor(
    readonly queue: string,
    readonly unit: ShapeUnit = "recipients",
    private readonly filter: EntryFilter = {},
  ) {}

  add(e: EntrySummary, now: number): void {
    const b = bucketOf(entryAge(e, now));
    const rcpts = matchingRecipients(e, this.filter);
    const perDomain = new Map<string, number>();
    for (const r of rcpts) {
      const d = domainOf(r) || "(no domain)";
      perDomain.set(d, (perDomain.get(d) ?? 0) + 1);
    }
    if (this.unit === "entries") {
      if (perDomain.size === 0) perDomain.set(e.meta ? "(none)" : "(unreadable)", 1);
      for (const d of perDomain.keys()) perDomain.set(d, 1);
      bump(this.total, b, 1);
    } else {
      bump(this.total, b, rcpts.length);
    }
    for (const [d, n] of perDomain) {
      let row = this.byDomain.get(d);
      if (!row) this.byDomain.set(d, (row = emptyRow(d)));
      bump(row, b, n);
    }
  }

  /** The histogram with the `top` busiest domains (ties by name). */
  result(top = 10): QueueShape {
    const rows = [...this.byDomain.values()].sort(
      (a, b) => b.total - a.total || a.domain.localeCompare(b.domain),
    );
    return {
      queue: this.queue,
      unit: this.unit,
      buckets: [...SHAPE_LABELS],
      total: this.total,
      rows: rows.slice(0, Math.max(0, top)),
      domains: rows.length,
    };
  }
}

function bump(row: ShapeRow, bucket: number, n: number): void {
  row.total += n;
  row.counts[bucket] = (row.counts[bucket] ?? 0) + n;
}
