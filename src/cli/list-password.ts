/**
 * `qrunner list password LIST`: set (or with --clear remove) a list's moderator password, stored as an
 * scrypt hash in the list file's `moderator_password` (src/lists/passwords.ts). The password never
 * comes from the command line, where `ps` and shell histories would show it: it is read from a
 * terminal without echo (asked twice), from the first line of stdin, or from --password-file.
 */
import type { Command } from "commander";
import { Exit, setExit, warn, withConfigOption, type GlobalOptions } from "./context.js";
import { listOrExit, settingsOrExit } from "./settings.js";

interface PasswordOptions extends GlobalOptions {
  passwordFile?: string;
  clear?: boolean;
}

/** More than any password: stdin is read up to here, a longer first line is refused. */
const MAX_INPUT = 64 * 1024;

export function register(program: Command): void {
  const list = program.command("list").description("change a list's settings kept in its list file");
  withConfigOption(
    list
      .command("password")
      .description("set the list's moderator password (for `Approved:` posts and moderator logins)")
      .argument("<list>", "the list's address (or its name, when unique)")
      .option("--password-file <file>", "read the password from the first line of this file")
      .option("--clear", "remove the list's moderator password"),
  )
    .addHelpText(
      "after",
      `
The password is read without echo from a terminal (asked twice), else from the first line of stdin,
or from --password-file; never from the command line. The list file keeps its comments; the daemon
picks the change up like any list edit.

Exit codes: 0 set (or cleared), 64 no password given (empty, or the two entries differ), 67 no such
list, 73 cannot write the list file, 78 invalid config.

Examples:
  qrunner list password dev@example.org
  printf '%s\\n' "$PW" | qrunner list password dev@example.org
  qrunner list password dev@example.org --password-file /run/secrets/dev-moderators`,
    )
    .action(async (name: string, _opts: PasswordOptions, cmd: Command) => {
      setExit(await setPassword(name, cmd.optsWithGlobals<PasswordOptions>()));
    });
}

async function setPassword(listArg: string, opts: PasswordOptions): Promise<number> {
  const { describeError } = await import("../util/errors.js");
  const settings = await settingsOrExit(opts);
  if (typeof settings === "number") return settings;
  const list = await listOrExit(settings, listArg);
  if (typeof list === "number") return list;
  if (opts.clear === true && opts.passwordFile !== undefined) {
    warn("--clear takes no password");
    return Exit.USAGE;
  }
  let hash: string | undefined;
  if (opts.clear !== true) {
    const password = await readPassword(opts.passwordFile);
    if (typeof password === "number") return password;
    const { hashPassword, MAX_PASSWORD_LENGTH } = await import("../lists/passwords.js");
    if (password.length > MAX_PASSWORD_LENGTH) {
      warn(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`);
      return Exit.USAGE;
    }
    hash = await hashPassword(password);
  }
  const { setListFileKey } = await import("../lists/list-file-edit.js");
  try {
    await setListFileKey(list.file, "moderator_password", hash);
  } catch (err) {
    warn(describeError(err));
    return Exit.CANTCREAT;
  }
  process.stdout.write(
    `${hash === undefined ? "removed the moderator password of" : "set the moderator password of"} ${list.address} in ${list.file}\n`,
  );
  return Exit.OK;
}

/** The new password, or an exit code after saying what is wrong. */
async function readPassword(file: string | undefined): Promise<string | number> {
  let password: string;
  if (file !== undefined) {
    const { readFile } = await import("node:fs/promises");
    try {
      password = firstLine(await readFile(file, "utf8"));
    } catch (err) {
      warn(`cannot read ${file}: ${(err as Error).message}`);
      return Exit.USAGE;
    }
  } else if (process.stdin.isTTY === true) {
    const first = await promptHidden("New moderator password: ");
    if (first === null) return Exit.USAGE;
    const again = await promptHidden("Again: ");
    if (again === null) return Exit.USAGE;
    if (first !== again) {
      warn("the two entries differ; nothing was changed");
      return Exit.USAGE;
    }
    password = first;
  } else {
    password = firstLine(await readStdin());
  }
  if (password === "") {
    warn("no password given (an empty one is refused); nothing was changed");
    return Exit.USAGE;
  }
  return password;
}

function firstLine(text: string): string {
  const nl = text.indexOf("\n");
  const line = nl === -1 ? text : text.slice(0, nl);
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    chunks.push(b);
    size += b.length;
    // the first line is all we use: stop reading once it is complete, or once the input is too long
    if (b.includes(0x0a) || size > MAX_INPUT) break;
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Read one line from the terminal without echoing it; null on Ctrl-C or Ctrl-D (nothing changes). */
function promptHidden(prompt: string): Promise<string | null> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve) => {
    let text = "";
    const finish = (result: string | null): void => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      resolve(result);
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return finish(text);
        if (ch === "\u0003" || ch === "\u0004") return finish(null);
        if (ch === "\u007f" || ch === "\b") text = [...text].slice(0, -1).join("");
        else if (ch >= " " && text.length <= MAX_INPUT) text += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onData);
  });
}
