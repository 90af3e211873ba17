/**
 * `qrunner`: the command-line entry point. Each command lives in its own module and registers itself;
 * modules keep their top-level imports light and load what their action needs when it runs.
 *
 * Two command lines skip commander and the other command modules altogether: `qrunner inject` (run
 * once per message by an MTA's pipe) and `qrunner start` (the master, and every worker it spawns,
 * which then stay resident). The fast path takes only command lines it reads exactly as commander
 * would (see fastCommand); anything else, help included, goes through the full program, so the
 * flags, messages and exit codes are the same either way.
 */
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

/** The options of a fast-path command: which take a value, which are flags, and the attribute names. */
interface FastGrammar {
  /** long option name (or `-X` short) → attribute */
  values: Record<string, string>;
  flags: Record<string, string>;
  /** how many positional arguments the command takes at most */
  maxArgs: number;
}

const GRAMMARS: Record<string, FastGrammar> = {
  inject: {
    values: { "--to": "to", "--from": "from", "--config": "config", "-C": "config" },
    flags: {},
    maxArgs: 1,
  },
  start: {
    values: {
      "--runner": "runner",
      "--slice": "slice",
      "--instance": "instance",
      "--config": "config",
      "-C": "config",
    },
    flags: { "--once": "once", "--allow-root": "allowRoot" },
    maxArgs: 0,
  },
};

interface FastCommand {
  command: "inject" | "start";
  args: string[];
  opts: Record<string, string | true>;
}

/**
 * `args` (argv after the script) as commander would parse it for `inject` or `start`, or null when
 * it is anything else or anything this parser does not read exactly like commander: help, `--`, an
 * unknown option, a value that looks like an option, too many arguments, `-` as a file. Repeated
 * options keep the last value, as in commander.
 */
function fastCommand(args: readonly string[]): FastCommand | null {
  const command = args[0];
  if (command !== "inject" && command !== "start") return null;
  const g = GRAMMARS[command];
  if (!g) return null;
  const opts: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const a = args[i] ?? "";
    if (!a.startsWith("-")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 2) {
      const key = g.values[a.slice(0, eq)];
      if (key === undefined) return null;
      opts[key] = a.slice(eq + 1);
      continue;
    }
    const flag = g.flags[a];
    if (flag !== undefined) {
      opts[flag] = true;
      continue;
    }
    const key = g.values[a];
    if (key !== undefined) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith("-")) return null;
      opts[key] = v;
      i++;
      continue;
    }
    // -Cfile
    const short = g.values[a.slice(0, 2)];
    if (!a.startsWith("--") && a.length > 2 && a[2] !== "=" && short !== undefined) {
      opts[short] = a.slice(2);
      continue;
    }
    return null; // --help, -h, --, -, an unknown option: commander's business
  }
  if (positional.length > g.maxArgs) return null;
  return { command, args: positional, opts };
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
    ...(fast.opts["allowRoot"] === true ? { allowRoot: true } : {}),
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
