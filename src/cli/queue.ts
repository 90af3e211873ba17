/**
 * `qrunner queue list|show|unshunt|requeue|hold|release|delete`: inspect entries, filter them, see a
 * queue's shape by domain and age, return shunted entries, and act on entries (queue-ops.ts).
 */
import type { Command } from "commander";
import type { EntryFilter } from "../queue/filter.js";
import { Exit, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";
import { registerOps } from "./queue-ops.js";
import { qfilesRoot, withFilterOptions, type FilterOptions } from "./queue-select.js";
import { RAW_OPTION, terminalText } from "./terminal-text.js";

interface ListOptions extends FilterOptions {
  json?: boolean;
  raw?: boolean;
  limit?: string;
  shape?: boolean;
  top?: string;
  count?: string;
}

export function register(program: Command): void {
  const queue = program
    .command("queue")
    .description("inspect and filter queue entries; requeue, hold, release, delete or unshunt them");

  withConfigOption(
    withFilterOptions(
      queue
        .command("list")
        .description(
          "entries of one queue, or of every queue, oldest first (--shape: counts by domain and age)",
        )
        .argument("[queue]", "incoming, outgoing, bounce, command, archive, backoff, shunt, bad or hold"),
    )
      .option("--json", "one JSON array (with --shape: one object per queue), for scripts")
      .option("--limit <n>", "at most this many entries per queue", "1000")
      .option("--shape", "a qshape-like table per queue: recipients by domain (rows) and age (columns)")
      .option("--top <n>", "with --shape: this many domains (the busiest)", "10")
      .option("--count <unit>", "with --shape: count recipients or entries", "recipients")
      .option(...RAW_OPTION),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  qrunner queue list shunt --json\n  qrunner queue list backoff --domain example.net --older-than 1h\n" +
        "  qrunner queue list --list dev@example.org --kind post\n  qrunner queue list outgoing --shape --top 20",
    )
    .action(async (name: string | undefined, opts: ListOptions) => setExit(await list(name, opts)));

  withConfigOption(
    queue
      .command("show")
      .description(
        "one entry's metadata and message headers, control characters escaped on a terminal (`--raw`: the message bytes exactly)",
      )
      .argument("<id>", "entry id (sha1) or an unambiguous prefix of at least 6 hex digits")
      .option("--raw", "write the raw message to stdout (on a terminal too: control characters and all)")
      .option("--json", "the metadata as JSON"),
  )
    .addHelpText("after", "\nExample:\n  qrunner queue show 3f2a9c")
    .action(async (id: string, opts: GlobalOptions & { raw?: boolean; json?: boolean }) =>
      setExit(await show(id, opts)),
    );

  withConfigOption(
    queue
      .command("unshunt")
      .description("return shunted entries (all, or the ids given) to the queue they failed in")
      .argument("[ids...]", "entry ids or prefixes; all shunted entries when none"),
  )
    .addHelpText(
      "after",
      "\nExample:\n  qrunner queue unshunt            # every shunted entry\n  qrunner queue unshunt 3f2a9c",
    )
    .action(async (ids: string[], opts: GlobalOptions) => setExit(await unshunt(ids, opts)));

  registerOps(queue);
}

async function list(name: string | undefined, opts: ListOptions): Promise<number> {
  const { KNOWN_QUEUES, listNames, eachSummary } = await import("../queue/inspect.js");
  const { entryAge, hasFilter, matchesFilter } = await import("../queue/filter.js");
  const { parseFilter } = await import("./queue-select.js");
  const { table } = await import("./table.js");
  const { formatDuration } = await import("../util/units.js");
  if (name !== undefined && !KNOWN_QUEUES.includes(name)) {
    warn(`no such queue: ${name} (one of ${KNOWN_QUEUES.join(", ")})`);
    return Exit.USAGE;
  }
  const filter = await parseFilter(opts);
  if (typeof filter === "string") return usage(filter);
  const limit = Number(opts.limit ?? 1000);
  if (!Number.isInteger(limit) || limit < 0) return usage(`--limit: not a number of entries: ${opts.limit}`);
  const root = await qfilesRoot(opts);
  if (root === null) return Exit.CONFIG;
  const out = terminalText(opts.raw);
  const queues = name ? [name] : KNOWN_QUEUES;
  const now = Date.now();
  if (opts.shape)
    return shape(
      root,
      queues.filter((q) => q !== "bad"),
      filter,
      now,
      opts,
    );

  const all = [];
  let more = 0;
  for (const q of queues) {
    const names = await listNames(root, q);
    let n = 0;
    // without a filter only the first `limit` files are opened; with one, every file until `limit` match
    for await (const e of eachSummary(root, q, hasFilter(filter) ? names : names.slice(0, limit))) {
      if (!matchesFilter(e, filter, now)) continue;
      if (n++ < limit) all.push(e);
      else more++;
    }
    if (!hasFilter(filter)) more += Math.max(0, names.length - limit);
  }
  if (opts.json) {
    out.write(JSON.stringify(all, null, 2) + "\n");
    return Exit.OK;
  }
  // the list, the kind and the note (a shunt reason, an SMTP server's reply) may be a stranger's text
  const rows = all.map((e) => [
    e.id.slice(0, 12),
    e.queue,
    e.state,
    // deferred entries say when they fall due; the others how long ago the message reached qrunner
    e.time > now
      ? `due in ${formatDuration(e.time - now, "whole")}`
      : formatDuration(entryAge(e, now), "whole"),
    e.meta?.list ?? "-",
    e.meta?.kind ?? "-",
    String(e.meta?.recipients.length ?? "-"),
    String(e.meta?.attempts ?? "-"),
    e.error ?? e.meta?.shuntReason ?? heldNote(e.meta?.extra) ?? e.meta?.failures.at(-1)?.message ?? "",
  ]);
  process.stdout.write(
    table(["ID", "QUEUE", "STATE", "AGE", "LIST", "KIND", "RCPTS", "TRIES", "NOTE"], out.data(rows)),
  );
  const tail = more > 0 ? ` (and ${more} more past --limit ${limit})` : "";
  process.stdout.write(`${all.length} entr${all.length === 1 ? "y" : "ies"}${tail}\n`);
  return Exit.OK;
}

function heldNote(extra: Record<string, unknown> | undefined): string | undefined {
  const from = extra?.["heldFrom"];
  return typeof from === "string" ? `held from ${from}` : undefined;
}

async function shape(
  root: string,
  queues: readonly string[],
  filter: EntryFilter,
  now: number,
  opts: ListOptions,
): Promise<number> {
  const { eachSummary } = await import("../queue/inspect.js");
  const { matchesFilter } = await import("../queue/filter.js");
  const { ShapeCounter } = await import("../queue/shape.js");
  const { renderShape } = await import("./queue-shape.js");
  const unit = opts.count ?? "recipients";
  if (unit !== "recipients" && unit !== "entries")
    return usage(`--count: recipients or entries, not ${unit}`);
  const top = Number(opts.top ?? 10);
  if (!Number.isInteger(top) || top < 0) return usage(`--top: not a number of domains: ${opts.top}`);
  const shapes = [];
  for (const q of queues) {
    const counter = new ShapeCounter(q, unit, filter);
    let n = 0;
    for await (const e of eachSummary(root, q)) {
      if (!matchesFilter(e, filter, now)) continue;
      counter.add(e, now);
      n++;
    }
    // every queue asked for by name is shown; of all queues, only those holding something
    if (n > 0 || queues.length === 1) shapes.push(counter.result(top));
  }
  const out = terminalText(opts.raw);
  if (opts.json) out.write(JSON.stringify(shapes, null, 2) + "\n");
  else if (shapes.length === 0) process.stdout.write("every queue is empty\n");
  else process.stdout.write(out.data(shapes).map(renderShape).join("\n"));
  return Exit.OK;
}

function usage(msg: string): number {
  warn(msg);
  return Exit.USAGE;
}

async function show(id: string, opts: GlobalOptions & { raw?: boolean; json?: boolean }): Promise<number> {
  const { findEntries } = await import("../queue/inspect.js");
  const { Switchboard } = await import("../queue/switchboard.js");
  const root = await qfilesRoot(opts);
  if (root === null) return Exit.CONFIG;
  const found = await findEntries(root, id);
  if (found.length !== 1) {
    warn(
      found.length === 0 ? `no entry with id ${id}` : `${found.length} entries match ${id}; give more digits`,
    );
    return Exit.FAIL;
  }
  const e = found[0]!;
  const sb = await Switchboard.open({ root, queue: e.queue });
  const full = await sb.peek(e.name);
  if (opts.raw) {
    process.stdout.write(full.message);
    return Exit.OK;
  }
  // on a terminal, the headers (and the metadata: addresses, SMTP replies) with control characters escaped
  const out = terminalText(false);
  if (opts.json) {
    out.write(
      JSON.stringify({ queue: e.queue, id: e.id, name: e.name, state: e.state, meta: full.meta }, null, 2) +
        "\n",
    );
    return Exit.OK;
  }
  const end = headerEnd(full.message);
  out.write(
    `queue:   ${e.queue} (${e.state})\nid:      ${e.id}\nfile:    ${e.name}\nsize:    ${full.message.length} bytes\n` +
      `meta:    ${JSON.stringify(full.meta, null, 2).replace(/\n/g, "\n         ")}\n\n` +
      full.message.subarray(0, end).toString("latin1") +
      "\n",
  );
  return Exit.OK;
}

function headerEnd(raw: Buffer): number {
  const a = raw.indexOf("\r\n\r\n");
  const b = raw.indexOf("\n\n");
  const ends = [a, b].filter((x) => x >= 0);
  return ends.length ? Math.min(...ends) : Math.min(raw.length, 8192);
}

async function unshunt(ids: string[], opts: GlobalOptions): Promise<number> {
  const { listQueue, findEntries } = await import("../queue/inspect.js");
  const { unshuntEntries } = await import("../queue/unshunt.js");
  const root = await qfilesRoot(opts);
  if (root === null) return Exit.CONFIG;
  let targets = [];
  if (ids.length === 0) targets = await listQueue(root, "shunt");
  else {
    for (const id of ids) {
      const f = (await findEntries(root, id)).filter((e) => e.queue === "shunt");
      if (f.length !== 1) {
        warn(f.length === 0 ? `no shunted entry with id ${id}` : `${f.length} shunted entries match ${id}`);
        return Exit.FAIL;
      }
      targets.push(f[0]!);
    }
  }
  const done = await unshuntEntries(root, targets, (u) => process.stdout.write(`${u.id} -> ${u.to}\n`));
  const moved = done.length;
  process.stdout.write(`${moved} entr${moved === 1 ? "y" : "ies"} returned\n`);
  return Exit.OK;
}
