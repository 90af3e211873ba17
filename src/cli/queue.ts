/** `qrunner queue list|show|unshunt`: inspect entries and return shunted ones to their queue. */
import type { Command } from "commander";
import { Exit, configPath, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";

interface ListOptions extends GlobalOptions {
  json?: boolean;
  limit?: string;
}

export function register(program: Command): void {
  const queue = program.command("queue").description("inspect queue entries; return shunted entries to their queue");

  withConfigOption(
    queue
      .command("list")
      .description("entries of one queue, or of every queue, oldest first")
      .argument("[queue]", "incoming, outgoing, bounce, command, archive, backoff, shunt or bad")
      .option("--json", "one JSON array, for scripts")
      .option("--limit <n>", "at most this many entries per queue", "1000"),
  )
    .addHelpText("after", "\nExample:\n  qrunner queue list shunt --json")
    .action(async (name: string | undefined, opts: ListOptions) => setExit(await list(name, opts)));

  withConfigOption(
    queue
      .command("show")
      .description("one entry's metadata and message headers (`--raw`: the message bytes exactly)")
      .argument("<id>", "entry id (sha1) or an unambiguous prefix of at least 6 hex digits")
      .option("--raw", "write the raw message to stdout")
      .option("--json", "the metadata as JSON"),
  )
    .addHelpText("after", "\nExample:\n  qrunner queue show 3f2a9c")
    .action(async (id: string, opts: GlobalOptions & { raw?: boolean; json?: boolean }) => setExit(await show(id, opts)));

  withConfigOption(
    queue
      .command("unshunt")
      .description("return shunted entries (all, or the ids given) to the queue they failed in")
      .argument("[ids...]", "entry ids or prefixes; all shunted entries when none"),
  )
    .addHelpText("after", "\nExample:\n  qrunner queue unshunt            # every shunted entry\n  qrunner queue unshunt 3f2a9c")
    .action(async (ids: string[], opts: GlobalOptions) => setExit(await unshunt(ids, opts)));
}

async function qfilesRoot(opts: GlobalOptions): Promise<string | null> {
  const { loadConfig } = await import("../config/load.js");
  try {
    return (await loadConfig(configPath(opts))).qfiles;
  } catch (err) {
    warn(err instanceof Error ? err.message : String(err));
    return null;
  }
}

async function list(name: string | undefined, opts: ListOptions): Promise<number> {
  const { listQueue } = await import("../queue/inspect.js");
  const { QUEUE_NAMES } = await import("../queue/types.js");
  const { table, age } = await import("./table.js");
  if (name !== undefined && !(QUEUE_NAMES as readonly string[]).includes(name)) {
    warn(`no such queue: ${name} (one of ${QUEUE_NAMES.join(", ")})`);
    return Exit.USAGE;
  }
  const root = await qfilesRoot(opts);
  if (root === null) return Exit.CONFIG;
  const limit = Number(opts.limit ?? 1000);
  const all = [];
  for (const q of name ? [name] : QUEUE_NAMES) all.push(...(await listQueue(root, q, limit)));
  if (opts.json) {
    process.stdout.write(JSON.stringify(all, null, 2) + "\n");
    return Exit.OK;
  }
  const now = Date.now();
  const rows = all.map((e) => [
    e.id.slice(0, 12),
    e.queue,
    e.state,
    e.time > now ? `due in ${age(e.time - now)}` : age(now - e.time),
    e.meta?.list ?? "-",
    e.meta?.kind ?? "-",
    String(e.meta?.recipients.length ?? "-"),
    String(e.meta?.attempts ?? "-"),
    e.error ?? e.meta?.shuntReason ?? e.meta?.failures.at(-1)?.message ?? "",
  ]);
  process.stdout.write(table(["ID", "QUEUE", "STATE", "AGE", "LIST", "KIND", "RCPTS", "TRIES", "NOTE"], rows));
  process.stdout.write(`${all.length} entr${all.length === 1 ? "y" : "ies"}\n`);
  return Exit.OK;
}

async function show(id: string, opts: GlobalOptions & { raw?: boolean; json?: boolean }): Promise<number> {
  const { findEntries } = await import("../queue/inspect.js");
  const { Switchboard } = await import("../queue/switchboard.js");
  const root = await qfilesRoot(opts);
  if (root === null) return Exit.CONFIG;
  const found = await findEntries(root, id);
  if (found.length !== 1) {
    warn(found.length === 0 ? `no entry with id ${id}` : `${found.length} entries match ${id}; give more digits`);
    return Exit.FAIL;
  }
  const e = found[0]!;
  const sb = await Switchboard.open({ root, queue: e.queue });
  const full = await sb.peek(e.name);
  if (opts.raw) {
    process.stdout.write(full.message);
    return Exit.OK;
  }
  if (opts.json) {
    process.stdout.write(JSON.stringify({ queue: e.queue, id: e.id, name: e.name, state: e.state, meta: full.meta }, null, 2) + "\n");
    return Exit.OK;
  }
  const end = headerEnd(full.message);
  process.stdout.write(
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
  const { Switchboard } = await import("../queue/switchboard.js");
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
  const shunt = await Switchboard.open({ root, queue: "shunt" });
  let moved = 0;
  for (const t of targets) {
    if (t.state !== "queued") continue;
    const entry = await shunt.take(t.name);
    if (!entry) continue;
    const origin = entry.meta.shuntedFrom ?? "incoming";
    const target = await Switchboard.open({ root, queue: origin });
    // a fresh start: Mailman keeps the crash count, so unshunted mail went straight back to bad
    const { shuntedFrom: _f, shuntReason: _r, ...rest } = entry.meta;
    await target.enqueueMany([{ message: entry.message, meta: { ...rest, recoveries: 0 }, id: entry.id }]);
    await shunt.finish(entry);
    process.stdout.write(`${entry.id} -> ${origin}\n`);
    moved++;
  }
  process.stdout.write(`${moved} entr${moved === 1 ? "y" : "ies"} returned\n`);
  return Exit.OK;
}
