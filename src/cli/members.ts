/**
 * `qrunner members LIST`: a list's effective members (file and mail joins, minus mail leaves) with
 * their state and bounce score; `--enable`/`--disable` change a member's delivery state by hand.
 */
import type { Command } from "commander";
import type { MemberReport } from "../lists/members.js";
import { Exit, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";
import { listOrExit, settingsOrExit } from "./settings.js";
import { table } from "./table.js";
import { RAW_OPTION, terminalText } from "./terminal-text.js";

interface MembersOptions extends GlobalOptions {
  json?: boolean;
  raw?: boolean;
  enable: string[];
  disable: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function register(program: Command): void {
  withConfigOption(
    program
      .command("members")
      .description("show a list's members, their state (enabled, or disabled and why) and bounce score")
      .argument("<list>", "the list's address (or its name, when unique)")
      .option("--json", "machine-readable output")
      .option(...RAW_OPTION)
      .option(
        "--enable <addr>",
        "resume delivery to a member and reset its bounce score (repeatable)",
        collect,
        [],
      )
      .option("--disable <addr>", "stop delivery to a member (repeatable)", collect, []),
  )
    .addHelpText(
      "after",
      `
Exit codes: 0 ok, 1 no such member (for --enable/--disable), 67 no such list, 78 invalid config.

Examples:
  qrunner members dev@example.org
  qrunner members dev@example.org --enable bob@example.com --json`,
    )
    .action(async (list: string, _opts: MembersOptions, cmd: Command) => {
      setExit(await members(list, cmd.optsWithGlobals<MembersOptions>()));
    });
}

async function members(listArg: string, opts: MembersOptions): Promise<number> {
  const { normalizeAddress } = await import("../lists/addresses.js");
  const { ListStateStore } = await import("../lists/state.js");
  const m = await import("../lists/members.js");

  const settings = await settingsOrExit(opts);
  if (typeof settings === "number") return settings;
  const list = await listOrExit(settings, listArg);
  if (typeof list === "number") return list;
  const both = opts.enable.filter((a) =>
    opts.disable.some((d) => normalizeAddress(d) === normalizeAddress(a)),
  );
  if (both.length > 0) {
    warn(`both --enable and --disable given for ${both.join(", ")}`);
    return Exit.USAGE;
  }

  const store = new ListStateStore(settings.config.state, list.address);
  let state;
  const changes = [
    ...opts.enable.map((a) => ["enable", a] as const),
    ...opts.disable.map((a) => ["disable", a] as const),
  ];
  if (changes.length > 0) {
    const now = Date.now();
    const result = await store.update((s) => {
      // all or nothing: one unknown address and nothing changes
      const unknown = changes.filter(([, a]) => !m.isMember(list, s, a)).map(([, a]) => a);
      if (unknown.length === 0) {
        for (const [what, a] of changes) {
          if (what === "enable") m.enableMember(s, a);
          else m.disableMember(s, a, "admin", now);
        }
      }
      return { unknown, state: s };
    });
    if (result.unknown.length > 0) {
      // local parts are case-sensitive (RFC 5321): point at a member who differs only in case
      const near = result.unknown.flatMap((a) =>
        m.effectiveMembers(list, result.state).filter((e) => e.toLowerCase() === a.toLowerCase()),
      );
      const hint = near.length > 0 ? `; did you mean ${near.join(", ")}?` : "";
      warn(`not a member of ${list.address}: ${result.unknown.join(", ")} (nothing changed${hint})`);
      return Exit.FAIL;
    }
    state = result.state;
  } else {
    state = await store.read();
  }

  const report = m.memberReport(list, state);
  // addresses that joined by mail are a stranger's text
  const out = terminalText(opts.raw);
  if (opts.json) {
    out.write(JSON.stringify(report, null, 2) + "\n");
    return Exit.OK;
  }
  for (const [what, a] of changes) out.write(`${what}d ${a}\n`);
  process.stdout.write(formatReport(out.data(report)));
  return Exit.OK;
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The member table: address, state, score, source, then a summary line. */
export function formatReport(r: MemberReport): string {
  const rows = r.members.map((row) => [
    row.address,
    row.disabled ? `disabled: ${row.disabled.reason} since ${day(row.disabled.at)}` : "enabled",
    String(Math.round(row.score * 100) / 100),
    row.source,
  ]);
  const head = ["ADDRESS", "STATE", "SCORE", "SOURCE"];
  let out = rows.length > 0 ? table(head, rows) : `${r.list} has no members\n`;
  const { total, enabled, disabled } = r.counts;
  out += `${r.list}: ${total} member${total === 1 ? "" : "s"}, ${enabled} enabled, ${disabled} disabled\n`;
  if (r.leftByMail.length > 0) out += `left by mail (still in the list file): ${r.leftByMail.join(", ")}\n`;
  return out;
}
