/**
 * Moderation of held posts: `qrunner held [LIST]`, `approve ID`, `reject ID`, `discard ID`.
 * The actions themselves are the lists layer's moderation service (src/lists/moderation.ts), which the
 * reply-by-mail path and the web console share; this file maps its results to output and exit codes.
 */
import type { Command } from "commander";
import type { HeldMeta } from "../lists/held-format.js";
import type { QueueSource } from "../lists/queue-notice.js";
import type { Switchboard } from "../queue/switchboard.js";
import { Exit, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";
import { listOrExit, settingsOrExit } from "./settings.js";
import { table } from "./table.js";
import { RAW_OPTION, terminalText } from "./terminal-text.js";

interface HeldOptions extends GlobalOptions {
  json?: boolean;
  raw?: boolean;
}

interface RejectOptions extends GlobalOptions {
  reason?: string;
}

type Action = "approve" | "reject" | "discard";

export function register(program: Command): void {
  withConfigOption(
    program
      .command("held")
      .description("list the posts held for moderation (of one list, or of every list)")
      .argument("[list]", "the list's address (or its name, when unique); every list when absent")
      .option("--json", "machine-readable output")
      .option(...RAW_OPTION),
  )
    .addHelpText(
      "after",
      "\nExit codes: 0 ok, 67 no such list, 78 invalid config.\n\nExample:\n  qrunner held dev@example.org",
    )
    .action(async (list: string | undefined, _opts: HeldOptions, cmd: Command) => {
      setExit(await held(list, cmd.optsWithGlobals<HeldOptions>()));
    });

  const help = (example: string): string =>
    `\nIDs are shown by \`qrunner held\`; capitals are fine.\nExit codes: 0 done, 1 no such held post, 67 its list no longer exists, 75 cannot queue now (retry), 78 invalid config.\n\nExample:\n  ${example}`;

  withConfigOption(
    program
      .command("approve")
      .description("post a held message to its list (queued in incoming, marked approved)")
      .argument("<id>", "the held post's id"),
  )
    .addHelpText("after", help("qrunner approve 7k2m9qx4ab"))
    .action(async (id: string, _opts: GlobalOptions, cmd: Command) => {
      setExit(await act("approve", id, cmd.optsWithGlobals<GlobalOptions>()));
    });

  withConfigOption(
    program
      .command("reject")
      .description("refuse a held message and tell its poster why")
      .argument("<id>", "the held post's id")
      .option("--reason <text>", "one line for the poster (default: the list's moderator refused it)"),
  )
    .addHelpText("after", help('qrunner reject 7k2m9qx4ab --reason="off topic for this list"'))
    .action(async (id: string, _opts: RejectOptions, cmd: Command) => {
      setExit(await act("reject", id, cmd.optsWithGlobals<RejectOptions>()));
    });

  withConfigOption(
    program
      .command("discard")
      .description("drop a held message silently")
      .argument("<id>", "the held post's id"),
  )
    .addHelpText("after", help("qrunner discard 7k2m9qx4ab"))
    .action(async (id: string, _opts: GlobalOptions, cmd: Command) => {
      setExit(await act("discard", id, cmd.optsWithGlobals<GlobalOptions>()));
    });
}

async function held(listArg: string | undefined, opts: HeldOptions): Promise<number> {
  const settings = await settingsOrExit(opts);
  if (typeof settings === "number") return settings;
  const { HeldStore } = await import("../lists/held.js");
  let lists = [...settings.lists.values()];
  if (listArg !== undefined) {
    const list = await listOrExit(settings, listArg);
    if (typeof list === "number") return list;
    lists = [list];
  }
  const posts: HeldMeta[] = [];
  for (const l of lists) posts.push(...(await new HeldStore(settings.config.state, l.address).list()));
  posts.sort((a, b) => a.heldAt - b.heldAt);
  // sender, From and subject are the poster's text
  const out = terminalText(opts.raw);
  if (opts.json) {
    out.write(JSON.stringify(posts, null, 2) + "\n");
    return Exit.OK;
  }
  if (posts.length === 0) {
    process.stdout.write(
      `no held posts${listArg !== undefined ? ` for ${lists[0]?.address ?? listArg}` : ""}\n`,
    );
    return Exit.OK;
  }
  process.stdout.write(formatHeld(out.data(posts), lists.length > 1));
  return Exit.OK;
}

/** One line per post; the subject last, cut to keep lines short. */
export function formatHeld(posts: readonly HeldMeta[], withList: boolean): string {
  const head = ["ID", "HELD (UTC)", ...(withList ? ["LIST"] : []), "FROM", "SIZE", "REASON", "SUBJECT"];
  const rows = posts.map((p) => [
    p.id,
    new Date(p.heldAt).toISOString().slice(0, 16).replace("T", " "),
    ...(withList ? [p.list] : []),
    p.from ?? (p.sender || "<>"),
    String(p.size),
    p.reason,
    // a subject is the poster's text: show it on one line, without control characters
    // eslint-disable-next-line no-control-regex
    (p.subject ?? "").replace(/[\x00-\x1f\x7f]+/g, " ").slice(0, 60),
  ]);
  return table(head, rows);
}

async function act(action: Action, id: string, opts: GlobalOptions & { reason?: string }): Promise<number> {
  const settings = await settingsOrExit(opts);
  if (typeof settings === "number") return settings;
  const { findHeld } = await import("../lists/held.js");
  const { findList } = await import("../lists/addresses.js");
  const { moderate, describeResult } = await import("../lists/moderation.js");
  const { describeError } = await import("../util/errors.js");
  const { config, lists } = settings;

  const found = await findHeld(config.state, id);
  if (!found) {
    warn(
      `no held post with id ${JSON.stringify(id)} (\`qrunner held\` lists them; it may have been handled or expired)`,
    );
    return Exit.FAIL;
  }
  const queues = commandQueues(config.qfiles);
  try {
    const r = await moderate(
      { stateDir: config.state, queues },
      findList(lists, found.meta.list) ?? found.meta.list,
      found.meta.id,
      action === "reject" && opts.reason !== undefined
        ? { kind: action, reason: opts.reason }
        : { kind: action },
    );
    switch (r.status) {
      case "done":
        terminalText(false).write(describeResult(r) + "\n");
        return Exit.OK;
      case "not-found":
        warn(`no held post with id ${JSON.stringify(id)} (it has just been handled or expired)`);
        return Exit.FAIL;
      case "taken":
        warn(`held post ${r.id} is being handled by another command`);
        return Exit.FAIL;
      case "no-list":
        warn(`list ${r.list} no longer exists; \`qrunner discard ${r.id}\` drops the post`);
        return Exit.NOUSER;
      case "failed":
        warn(`${action} ${r.id} failed, the post stays held: ${describeError(r.error)}`);
        return r.temporary ? Exit.TEMPFAIL : Exit.FAIL;
    }
  } finally {
    queues.close();
  }
}

/** The queues one command writes to, opened on first use and closed when it is done. */
function commandQueues(root: string): QueueSource & { close(): void } {
  const open = new Map<string, Promise<Switchboard>>();
  return {
    get(queue) {
      let sb = open.get(queue);
      if (!sb) {
        sb = import("../queue/switchboard.js").then(({ Switchboard }) => Switchboard.open({ root, queue }));
        open.set(queue, sb);
      }
      return sb;
    },
    close() {
      for (const sb of open.values())
        void sb.then(
          (s) => s.close(),
          () => undefined,
        );
    },
  };
}
