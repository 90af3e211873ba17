/**
 * `qrunner`: the command-line entry point. Each command lives in its own module and registers itself;
 * modules keep their top-level imports light and load what their action needs when it runs.
 *
 * Two command lines skip commander and the other command modules altogether: `qrunner inject` (run
 * once per message by an MTA's pipe) and `qrunner start` (the master, and every worker it spawns,
 * which then stay resident). The fast path reads them with node's util.parseArgs and takes only
 * command lines it reads exactly as commander would (see fastCommand); anything else, help included, goes through the full program, so the
 * flags, messages and exit codes are the same either way.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Exit, warn } from "./context.js";

// Queue entries, state, status, logs and archives hold other people's mail and member lists: whatever
// the caller's umask, everything any command creates is 0600 in 0700 directories. Set first, before
// any command can write (the master and its workers, inject, unshunt, the moderation commands...).
process.umask(0o077);

// `qrunner queue list | head`: a closed pipe is the reader's choice, not an error worth a stack trace
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });

/** The options of a fast-path command, as util.parseArgs takes them, and its positional arguments. */
interface FastGrammar {
  options: NonNullable<ParseArgsConfig["options"]>;
  /** how many positional arguments the command takes at most */
  maxArgs: number;
}

const GRAMMARS: Record<"inject" | "start", FastGrammar> = {
  inject: {
    options: { to: { type: "string" }, from: { type: "string" }, config: { type: "string", short: "C" } },
    maxArgs: 1,
  },
  start: {
    options: {
      runner: { type: "string" },
      slice: { type: "string" },
      instance: { type: "string" },
      config: { type: "string", short: "C" },
      once: { type: "boolean" },
      "allow-root": { type: "boolean" },
    },
    maxArgs: 0,
  },
};

interface FastCommand {
  command: "inject" | "start";
  args: string[];
  /** as parseArgs gives them (no option is `multiple`: never an array) */
  opts: ReturnType<typeof parseArgs>["values"];
}

/**
 * `args` (argv after the script) as commander would parse it for `inject` or `start`, or null when
 * it is anything else or anything util.parseArgs (strict) does not read exactly like commander: help,
 * an unknown option, a missing value or one that starts with a dash, too many arguments. `--`, `-` and
 * `-C=...` are left to commander too (`--` is how the tests force the commander path). Repeated
 * options keep the last value, in both.
 */
function fastCommand(args: readonly string[]): FastCommand | null {
  const command = args[0];
  if (command !== "inject" && command !== "start") return null;
  const g = GRAMMARS[command];
  const rest = args.slice(1);
  if (rest.some((a) => a === "--" || a === "-" || a.startsWith("-C="))) return null;
  let parsed: { values: FastCommand["opts"]; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: g.options, strict: true, allowPositionals: true });
  } catch {
    return null; // commander's business, and its messages
  }
  if (parsed.positionals.length > g.maxArgs) return null;
  return { command, args: parsed.positionals, opts: parsed.values };
}

async function runFast(fast: FastCommand): Promise<number> {
  // the options given, as commander would set them (absent ones absent, not undefined)
  const given = (...keys: string[]): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const k of keys) {
      const v = fast.opts[k];
      if (typeof v === "string") out[k] = v;
    }
    return out;
  };
  if (fast.command === "inject") {
    const { inject } = await import("./inject.js");
    return inject(fast.args[0], given("config", "to", "from"));
  }
  const { start } = await import("./start.js");
  return start({
    ...given("config", "runner", "slice", "instance"),
    ...(fast.opts["once"] === true ? { once: true } : {}),
    ...(fast.opts["allow-root"] === true ? { allowRoot: true } : {}),
  });
}

async function runProgram(argv: string[]): Promise<void> {
  const [{ Command, CommanderError }, ...modules] = await Promise.all([
    import("commander"),
    import("./start.js"),
    import("./stop.js"),
    import("./reload.js"),
    import("./status.js"),
    import("./inject.js"),
    import("./queue.js"),
    import("./config-check.js"),
    import("./members.js"),
    import("./bounce-scan.js"),
    import("./moderation.js"),
    import("./list-password.js"),
    import("./web.js"),
  ]);
  const program = new Command();
  program
    .name("qrunner")
    .description("A mail queue daemon: durable on-disk queues, sha1-sliced runners, weighted SMTP delivery")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  for (const m of modules) m.register(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; usage errors exit 64 (commander has printed the message)
      process.exitCode = err.exitCode === 0 ? Exit.OK : Exit.USAGE;
      return;
    }
    throw err;
  }
}

try {
  const fast = fastCommand(process.argv.slice(2));
  if (fast) process.exitCode = await runFast(fast);
  else await runProgram(process.argv);
} catch (err) {
  warn(err instanceof Error ? err.message : String(err));
  process.exitCode = Exit.SOFTWARE;
}
