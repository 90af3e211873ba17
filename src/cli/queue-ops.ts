/**
 * `qrunner queue requeue|hold|release|delete`: act on single entries (ids or prefixes) or on every
 * entry a filter selects. Entries in progress are never touched; every move writes its successor
 * durably before the original goes (see src/queue/move.ts); delete asks first.
 */
import type { Command } from "commander";
import { Exit, setExit, warn, withConfigOption } from "./context.js";
import { withFilterOptions, type FilterOptions } from "./queue-select.js";
import type { EntrySummary } from "../queue/inspect.js";
import type { Op } from "../queue/move.js";

interface OpOptions extends FilterOptions {
  queue?: string;
  all?: boolean;
  dryRun?: boolean;
  quiet?: boolean;
  yes?: boolean;
}

const ABOUT: Record<Op, { what: string; example: string }> = {
  requeue: {
    what: "make deferred entries due now (backoff retries, same id)",
    example:
      "  qrunner queue requeue 3f2a9c\n  qrunner queue requeue --queue backoff --domain example.net\n  qrunner queue requeue --all",
  },
  hold: {
    what: "put entries aside in the hold queue (no runner touches them) until released",
    example: "  qrunner queue hold --queue outgoing --domain example.net\n  qrunner queue hold 3f2a9c 77be01",
  },
  release: {
    what: "return held entries (all, or those given or selected) to the queue they were held from",
    example:
      "  qrunner queue release                     # every held entry\n  qrunner queue release --domain example.net",
  },
  delete: {
    what: "remove entries for good, after a confirmation (--yes to skip it)",
    example: "  qrunner queue delete 3f2a9c\n  qrunner queue delete --queue shunt --older-than 7d --yes",
  },
};

export function registerOps(queue: Command): void {
  for (const op of ["requeue", "hold", "release", "delete"] as const) {
    let cmd = queue
      .command(op)
      .description(ABOUT[op].what)
      .argument("[ids...]", "entry ids or unambiguous prefixes (6+ hex digits); the filters narrow them too");
    if (op !== "release")
      cmd = cmd
        .option("--queue <queue>", "only entries of this queue")
        .option("--all", "every entry the command applies to (when no id, --queue or filter is given)");
    cmd = withFilterOptions(cmd)
      .option("-n, --dry-run", "say what would be done, and do nothing")
      .option("-q, --quiet", "no line per entry, only the summary");
    if (op === "delete")
      cmd = cmd.option("-y, --yes", "do not ask for confirmation (needed without a terminal)");
    withConfigOption(cmd)
      .addHelpText("after", `\nExamples:\n${ABOUT[op].example}`)
      .action(async (ids: string[], opts: OpOptions) => setExit(await runOp(op, ids, opts)));
  }
}

/** The queues an operation may act on; a message when `--queue` names one it may not. */
async function scope(
  op: Op,
  wanted: string | undefined,
): Promise<{ queues: string[]; origins: string[] } | string> {
  const { QUEUE_NAMES } = await import("../queue/types.js");
  const { HOLD_QUEUE, KNOWN_QUEUES } = await import("../queue/inspect.js");
  const runnerQueues: string[] = QUEUE_NAMES.filter((q) => q !== "shunt" && q !== "bad");
  const origins = [...runnerQueues, "shunt"];
  const allowed: Record<Op, string[]> = {
    requeue: runnerQueues,
    hold: origins,
    release: [HOLD_QUEUE],
    delete: [...origins, HOLD_QUEUE],
  };
  const queues = allowed[op];
  if (wanted === undefined) return { queues, origins };
  if (!KNOWN_QUEUES.includes(wanted)) return `no such queue: ${wanted} (one of ${KNOWN_QUEUES.join(", ")})`;
  if (!queues.includes(wanted)) {
    if (wanted === "bad")
      return "entries in bad are files that could not be read: inspect and remove them by hand";
    if (wanted === HOLD_QUEUE)
      return `held entries are not ${op === "hold" ? "held again" : "requeued"}: use \`qrunner queue release\``;
    if (wanted === "shunt") return "shunted entries go back with `qrunner queue unshunt`";
    return `${op} applies to ${queues.join(", ")}`;
  }
  return { queues: [wanted], origins };
}

const PAST: Record<Op, string> = {
  requeue: "requeued",
  hold: "held",
  release: "released",
  delete: "deleted",
};

function plural(n: number): string {
  return `${n} entr${n === 1 ? "y" : "ies"}`;
}

async function runOp(op: Op, ids: string[], opts: OpOptions): Promise<number> {
  const { parseFilter, qfilesRoot, select } = await import("./queue-select.js");
  const { hasFilter } = await import("../queue/filter.js");
  const filter = await parseFilter(opts);
  if (typeof filter === "string") return usage(filter);
  const sc = await scope(op, opts.queue);
  if (typeof sc === "string") return usage(sc);
  if (op !== "release" && ids.length === 0 && opts.queue === undefined && !hasFilter(filter) && !opts.all)
    return usage(
      `say which entries to ${op}: ids, --queue, a filter (--list, --domain, --older-than, ...), or --all`,
    );
  const root = await qfilesRoot(opts);
  if (root === null) return Exit.CONFIG;

  const now = Date.now();
  const sel = await select(root, ids, filter, sc.queues, now);
  if (sel.problems.length > 0) {
    for (const p of sel.problems) warn(p);
    warn(`nothing ${PAST[op]}`);
    return Exit.FAIL;
  }
  for (const e of sel.inProgress.slice(0, 10))
    warn(`${e.id} (${e.queue}) is in progress in a runner's hands; not touched`);
  if (sel.inProgress.length > 10) warn(`... and ${sel.inProgress.length - 10} more in progress; not touched`);

  // requeue: an entry already due is left as it is (its runner takes it in turn)
  const due = op === "requeue" ? sel.targets.filter((e) => e.time <= now) : [];
  const targets = op === "requeue" ? sel.targets.filter((e) => e.time > now) : sel.targets;
  const notes: string[] = [];
  if (due.length) notes.push(`${plural(due.length)} already due`);
  if (sel.inProgress.length) notes.push(`${plural(sel.inProgress.length)} in progress, not touched`);
  // named entries that could not be acted on fail the command; a filter's leftovers do not
  const strict = ids.length > 0;
  const failCode = strict && sel.inProgress.length > 0 ? Exit.FAIL : Exit.OK;

  if (targets.length === 0) {
    process.stdout.write(`nothing to ${op}${notes.length ? `: ${notes.join("; ")}` : ""}\n`);
    return failCode;
  }
  if (opts.dryRun) {
    if (!opts.quiet)
      for (const e of targets) process.stdout.write(`${e.id} ${e.queue}: would be ${PAST[op]}\n`);
    process.stdout.write(
      `would have ${PAST[op]} ${plural(targets.length)}${notes.length ? `; ${notes.join("; ")}` : ""}\n`,
    );
    return failCode;
  }
  if (op === "delete" && !opts.yes) {
    const ok = await askDelete(targets);
    if (ok !== true) return ok;
  }
  return execute(op, root, targets, now, sc.origins, opts, notes, { strict, failed: failCode !== Exit.OK });
}

async function askDelete(targets: readonly { queue: string }[]): Promise<true | number> {
  if (process.stdin.isTTY !== true) {
    warn(
      `refusing to delete ${plural(targets.length)} without confirmation: stdin is not a terminal; add --yes`,
    );
    return Exit.USAGE;
  }
  const { confirm } = await import("./queue-progress.js");
  const perQueue = new Map<string, number>();
  for (const t of targets) perQueue.set(t.queue, (perQueue.get(t.queue) ?? 0) + 1);
  const where = [...perQueue].map(([q, n]) => `${q} ${n}`).join(", ");
  if (await confirm(`Delete ${plural(targets.length)} (${where}) for good?`)) return true;
  process.stderr.write("nothing deleted\n");
  return Exit.FAIL;
}

async function execute(
  op: Op,
  root: string,
  targets: readonly EntrySummary[],
  now: number,
  origins: readonly string[],
  opts: OpOptions,
  notes: string[],
  outcome: { strict: boolean; failed: boolean },
): Promise<number> {
  const { applyOp, QueueOpError } = await import("../queue/move.js");
  const { Progress } = await import("./queue-progress.js");
  const { formatDuration } = await import("../util/units.js");
  const progress = new Progress(op, targets.length);
  // a bar on the same terminal as a line per entry would be torn up: with the bar, lines only when redirected
  const lines = !opts.quiet && !(progress.active && process.stdout.isTTY === true);
  let done = 0;
  const skipped: string[] = [];
  try {
    await applyOp(root, op, targets, now, origins, {
      tick: () => progress.tick(),
      moved: ({ entry, to }) => {
        done++;
        if (!lines) return;
        if (to === null) process.stdout.write(`${entry.id} ${entry.queue}: deleted\n`);
        else if (op === "requeue")
          process.stdout.write(
            `${entry.id} ${entry.queue}: due now (was due in ${formatDuration(Math.max(0, entry.time - now))})\n`,
          );
        else process.stdout.write(`${entry.id} ${entry.queue} -> ${to}\n`);
      },
      skipped: (e, why) => skipped.push(`${e.id} (${e.queue}): ${why}`),
    });
  } catch (err) {
    progress.finish();
    if (!(err instanceof QueueOpError)) throw err;
    warn(err.message);
    warn(`${PAST[op]} ${plural(done)} before the failure; the rest are where they were`);
    return Exit.FAIL;
  }
  progress.finish();
  for (const s of skipped.slice(0, 10)) warn(s);
  if (skipped.length > 10) warn(`... and ${skipped.length - 10} more left where they were`);
  if (skipped.length) notes.push(`${plural(skipped.length)} left where they were`);
  process.stdout.write(`${PAST[op]} ${plural(done)}${notes.length ? `; ${notes.join("; ")}` : ""}\n`);
  // entries named by id that were left where they were fail the command; a filter's leftovers only when nothing was done
  const leftOver = skipped.length > 0 && (outcome.strict || done === 0);
  return outcome.failed || leftOver ? Exit.FAIL : Exit.OK;
}

function usage(msg: string): number {
  warn(msg);
  return Exit.USAGE;
}
