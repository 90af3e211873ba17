/**
 * `qrunner inject`: queue one message durably in `incoming`, with the sysexits codes an MTA's pipe
 * understands. Run once per message by the MTA, so it loads only what it needs.
 */
import type { Command } from "commander";
import { Exit, configPath, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";

export interface InjectOptions extends GlobalOptions {
  to?: string;
  from?: string;
}

export function register(program: Command): void {
  withConfigOption(
    program
      .command("inject")
      .description("queue one RFC 5322 message durably in `incoming` (stdin when no FILE)")
      .argument("[file]", "the message; standard input when absent")
      .option(
        "--to <addr>",
        "envelope recipient: a list's post, -request, -join, -leave, -bounces, VERP or -owner address",
      )
      .option(
        "--from <addr>",
        "envelope sender (default: the Return-Path or From header; empty for bounces)",
      ),
  )
    .addHelpText(
      "after",
      `
Exit codes (sysexits, as an MTA pipe expects):
  0 queued (fsynced)   65 not a message, or over 64 MiB   67 no such list or address
  75 cannot queue now (disk full, permissions, invalid config): retry later

Example:
  qrunner inject --to=dev@example.org --from=alice@example.net < post.eml`,
    )
    .action(async (file: string | undefined, opts: InjectOptions) => {
      setExit(await inject(file, opts));
    });
}

/** `qrunner inject` with its options parsed (by commander, or by main.ts's fast path); the exit code. */
export async function inject(file: string | undefined, opts: InjectOptions): Promise<number> {
  const { readMessage, injectMessage, InjectError } = await import("../intake/inject.js");
  let raw: Buffer;
  try {
    raw = await readMessage(file);
  } catch (err) {
    if (err instanceof InjectError) {
      warn(err.message);
      return err.exitCode;
    }
    warn(`cannot read the message: ${err instanceof Error ? err.message : String(err)}`);
    return file ? Exit.DATAERR : Exit.TEMPFAIL;
  }
  try {
    const r = await injectMessage(configPath(opts), raw, { to: opts.to, from: opts.from });
    process.stdout.write(`queued ${r.id} in incoming for ${r.to} (${r.role})\n`);
    return Exit.OK;
  } catch (err) {
    if (err instanceof InjectError) {
      warn(err.message);
      return err.exitCode;
    }
    warn(err instanceof Error ? err.message : String(err));
    return Exit.TEMPFAIL;
  }
}
