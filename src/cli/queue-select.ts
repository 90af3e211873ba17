/**
 * What `queue list` and the bulk commands (requeue, hold, release, delete) share: the filter options,
 * and turning ids and filters into the entries to act on. Entries in progress (`.wip`, in a runner's
 * hands) are reported, never selected.
 */
import type { Command } from "commander";
import type { EntryFilter } from "../queue/filter.js";
import type { EntrySummary } from "../queue/inspect.js";
import { configPath, warn, type GlobalOptions } from "./context.js";

export interface FilterOptions extends GlobalOptions {
  list?: string;
  domain?: string;
  olderThan?: string;
  youngerThan?: string;
  kind?: string;
}

/** Add --list, --domain, --older-than, --younger-than and --kind to a command. */
export function withFilterOptions(cmd: Command): Command {
  return cmd
    .option("--list <addr>", "entries of this list (its posting address)")
    .option("--domain <domain>", "entries with a recipient in this domain (.example.org: and its subdomains)")
    .option("--older-than <duration>", "entries that reached qrunner longer ago than this (30s, 5m, 2h, 3d)")
    .option("--younger-than <duration>", "entries that reached qrunner more recently than this")
    .option("--kind <kind>", "entries of this kind (post, request, notice, bounce-event, ...)");
}

/** The filter the options describe; a message saying what is wrong when an option is malformed. */
export async function parseFilter(opts: FilterOptions): Promise<EntryFilter | string> {
  const { parseDuration } = await import("../util/units.js");
  const f: EntryFilter = {};
  if (opts.list !== undefined) f.list = opts.list;
  if (opts.kind !== undefined) f.kind = opts.kind;
  if (opts.domain !== undefined) {
    const d = opts.domain.replace(/^@/, "");
    if (!/^\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(d)) return `--domain: not a domain: ${opts.domain}`;
    f.domain = d;
  }
  for (const [key, value] of [
    ["olderThanMs", opts.olderThan],
    ["youngerThanMs", opts.youngerThan],
  ] as const) {
    if (value === undefined) continue;
    const ms = parseDuration(value);
    if (ms === undefined)
      return `--${key === "olderThanMs" ? "older" : "younger"}-than: not a duration: ${value} (say 30s, 5m, 2h or 3d)`;
    f[key] = ms;
  }
  return f;
}

/** The qfiles root from the config; null (the reason printed) when the config does not load. */
export async function qfilesRoot(opts: GlobalOptions): Promise<string | null> {
  const { loadConfig } = await import("../config/load.js");
  try {
    return (await loadConfig(configPath(opts))).qfiles;
  } catch (err) {
    warn(err instanceof Error ? err.message : String(err));
    return null;
  }
}

export interface Selection {
  /** queued entries to act on, oldest first per queue */
  targets: EntrySummary[];
  /** matching entries a runner holds in progress: left alone */
  inProgress: EntrySummary[];
  /** ids that could not be resolved (not found, ambiguous, or excluded by the filters) */
  problems: string[];
}

/**
 * Resolve ids (unambiguous prefixes of 6+ hex digits) within `queues`, narrowed by the filter, or,
 * without ids, every entry of `queues` the filter matches.
 */
export async function select(
  root: string,
  ids: readonly string[],
  filter: EntryFilter,
  queues: readonly string[],
  now: number,
): Promise<Selection> {
  const { findEntries, eachSummary } = await import("../queue/inspect.js");
  const { matchesFilter } = await import("../queue/filter.js");
  const sel: Selection = { targets: [], inProgress: [], problems: [] };
  if (ids.length > 0) {
    const seen = new Set<string>();
    for (const id of ids) {
      const found = await findEntries(root, id, queues);
      const distinct = new Set(found.map((e) => e.id));
      if (found.length === 0) sel.problems.push(await notFound(root, id, queues));
      else if (distinct.size > 1) sel.problems.push(`${distinct.size} entries match ${id}; give more digits`);
      else {
        // one id seen twice is an entry caught between two queues by a move (or a runner): in progress
        const e = found.find((x) => x.state === "in progress") ?? found[0];
        if (!e || seen.has(e.id)) continue;
        seen.add(e.id);
        if (!matchesFilter(e, filter, now))
          sel.problems.push(`${id}: entry ${e.id.slice(0, 12)} does not match the filters`);
        else if (e.state === "in progress" || found.length > 1) sel.inProgress.push(e);
        else sel.targets.push(e);
      }
    }
    return sel;
  }
  for (const q of queues) {
    for await (const e of eachSummary(root, q)) {
      if (!matchesFilter(e, filter, now)) continue;
      // the metadata is read again when the entry is taken: keep 100,000 targets small in memory
      (e.state === "queued" ? sel.targets : sel.inProgress).push({ ...e, meta: null });
    }
  }
  return sel;
}

/** Why an id matched nothing here: no such entry, or one in a queue this command does not apply to. */
async function notFound(root: string, id: string, queues: readonly string[]): Promise<string> {
  const { findEntries, KNOWN_QUEUES } = await import("../queue/inspect.js");
  const elsewhere = (await findEntries(root, id, KNOWN_QUEUES)).find((e) => !queues.includes(e.queue));
  if (elsewhere)
    return `${id}: the entry is in ${elsewhere.queue}; this command applies to ${queues.join(", ")}`;
  return `no entry with id ${id}${queues.length === 1 ? ` in ${queues[0]}` : ""}`;
}
