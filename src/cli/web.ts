/**
 * `qrunner web`: the web console on its own (`web.listen`), beside a master or without one, until
 * SIGINT or SIGTERM; and `qrunner web hash-password`, which reads a password on stdin (never from the
 * command line, where `ps` and the shell history would show it) and prints its scrypt hash for
 * `web.operators`.
 */
import type { Command } from "commander";
import { Exit, configPath, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";

interface WebOptions extends GlobalOptions {
  listen?: string;
}

/** Settings are reread at most this often (a list edit reaches the console within this time). */
const SETTINGS_TTL_MS = 2000;

export function register(program: Command): void {
  const web = withConfigOption(
    program
      .command("web")
      .description(
        "serve the web console (web.listen) without the master; `web hash-password` makes an operator hash",
      )
      .option("--listen <host:port>", "listen here instead of web.listen"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  qrunner web -C /etc/qrunner/qrunner.yaml\n  qrunner web hash-password < password.txt\n\nSee docs/web.md.",
    )
    .action(async (opts: WebOptions) => setExit(await serve(opts)));
  web
    .command("hash-password")
    .description("read a password on stdin, print its scrypt hash (for web.operators[].password_hash)")
    .action(async () => setExit(await hashFromStdin()));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 4096) break;
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function hashFromStdin(): Promise<number> {
  const { hashPassword } = await import("../lists/passwords.js");
  if (process.stdin.isTTY === true) process.stderr.write("password (then Enter and Ctrl-D): ");
  // one line: the trailing newline of `echo` or a file is not part of the password
  const password = (await readStdin()).split(/\r?\n/)[0] ?? "";
  if (password.length === 0) {
    warn("no password on stdin");
    return Exit.USAGE;
  }
  try {
    process.stdout.write((await hashPassword(password)) + "\n");
  } catch (err) {
    warn((err as Error).message);
    return Exit.USAGE;
  }
  return Exit.OK;
}

async function serve(opts: WebOptions): Promise<number> {
  const [{ loadAll }, { ConfigError }, { WebConsole }, { createLogger }, { masterView }] = await Promise.all([
    import("../lists/load.js"),
    import("../util/errors.js"),
    import("../web/server.js"),
    import("../util/log.js"),
    import("./status.js"),
  ]);
  const file = configPath(opts);
  let settings: Awaited<ReturnType<typeof loadAll>>;
  try {
    settings = await loadAll(file);
  } catch (err) {
    warn(err instanceof ConfigError ? `invalid config:\n${err.message}` : (err as Error).message);
    return Exit.CONFIG;
  }
  const listen = opts.listen ?? settings.config.web.listen;
  if (listen === undefined) {
    warn("no web.listen in the config (and no --listen): nothing to serve");
    return Exit.CONFIG;
  }
  const log = createLogger(settings.config.log, { component: "web" });
  let loadedAt = Date.now();
  let reloading: Promise<void> | null = null;
  const current = async (): Promise<typeof settings> => {
    if (Date.now() - loadedAt > SETTINGS_TTL_MS)
      await (reloading ??= loadAll(file)
        .then(
          (s) => void (settings = s),
          // an edit that does not validate: keep serving with the last good settings
          (err: unknown) => log.logger.warn({ err: (err as Error).message }, "web: config not reloaded"),
        )
        .finally(() => {
          loadedAt = Date.now();
          reloading = null;
        }));
    return settings;
  };
  let server;
  try {
    server = await WebConsole.start({
      listen,
      deps: {
        settings: current,
        daemon: async () => {
          const v = await masterView(file);
          return { running: v.running, status: v.status ?? (await readLastStatus(v.where.stateDir)) };
        },
        logger: log.logger,
      },
    });
  } catch (err) {
    warn((err as Error).message);
    log.close();
    return Exit.FAIL;
  }
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.close();
  log.close();
  return Exit.OK;
}

/** The last status a master wrote, even when it no longer runs (the console shows it as stopped). */
async function readLastStatus(stateDir: string) {
  const { readStatus } = await import("../master/status-file.js");
  return readStatus(stateDir);
}
