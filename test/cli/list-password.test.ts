/**
 * `qrunner list password LIST` as a real process: the hash lands in the list file with the file's
 * comments, mode and symlink kept; the password comes from stdin, a file, or a terminal without echo
 * (a real pseudo-terminal through Python's pty module), never from argv; exit codes as documented.
 */
import { spawnSync } from "node:child_process";
import { chmod, lstat, mkdir, readFile, rename, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { verifyPassword } from "../../src/lists/passwords.js";
import { BIN, makeSite, requireBuild, runCli, type Site } from "../helpers/site.js";

beforeAll(() => requireBuild());

let site: Site | undefined;
afterEach(async () => {
  await site?.cleanup();
  site = undefined;
});

const LIST_FILE = `# the dev list: keep this comment
address: dev@example.org
owners: [owner@example.org] # who gets the notices
members: [alice@example.net]
description: a description long enough that a YAML writer with a line width would fold it somewhere in the middle
nonmembers: hold
`;

async function devSite(): Promise<{ site: Site; file: string }> {
  site = await makeSite("");
  const file = path.join(site.listsDir, "dev@example.org.yaml");
  await writeFile(file, LIST_FILE, { mode: 0o640 });
  await chmod(file, 0o640);
  return { site, file };
}

function passwordOf(text: string): string {
  const m = /^moderator_password: (\S+)$/m.exec(text);
  expect(m, text).not.toBeNull();
  return m![1]!;
}

describe("qrunner list password", () => {
  it("stores an scrypt hash from stdin, keeping the rest of the file as it was", async () => {
    const { site, file } = await devSite();
    const r = await runCli(["list", "password", "dev", "-C", site.configFile], {
      input: "hunter2 two\nignored\n",
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`set the moderator password of dev@example.org in ${file}\n`);
    const text = await readFile(file, "utf8");
    const hash = passwordOf(text);
    expect(await verifyPassword("hunter2 two", hash)).toBe(true);
    expect(text).toBe(LIST_FILE + `moderator_password: ${hash}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect((await runCli(["config", "check", "-C", site.configFile])).code).toBe(0);

    // again: replaced in place; --clear: the file as it was
    expect(
      (await runCli(["list", "password", "dev", "-C", site.configFile], { input: "other\n" })).code,
    ).toBe(0);
    const again = await readFile(file, "utf8");
    expect(await verifyPassword("other", passwordOf(again))).toBe(true);
    expect(again.match(/moderator_password/g)).toHaveLength(1);
    const cleared = await runCli(["list", "password", "dev", "--clear", "-C", site.configFile]);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(await readFile(file, "utf8")).toBe(LIST_FILE);
  });

  it("reads --password-file, and follows a symlinked list file (the link stays)", async () => {
    const { site, file } = await devSite();
    const real = path.join(site.dir, "real-lists", "dev.yaml");
    await mkdir(path.dirname(real), { recursive: true });
    await rename(file, real);
    await symlink(real, file);
    const pw = path.join(site.dir, "pw");
    await writeFile(pw, "from a file\r\n", { mode: 0o600 });
    const r = await runCli([
      "list",
      "password",
      "dev@example.org",
      "--password-file",
      pw,
      "-C",
      site.configFile,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect((await lstat(file)).isSymbolicLink()).toBe(true);
    expect(await verifyPassword("from a file", passwordOf(await readFile(real, "utf8")))).toBe(true);
  });

  it("exit codes: 64 no password, 67 no such list, 78 invalid config; nothing written", async () => {
    const { site, file } = await devSite();
    const empty = await runCli(["list", "password", "dev", "-C", site.configFile], { input: "\n" });
    expect(empty.code).toBe(64);
    expect(empty.stderr).toContain("no password given");
    expect((await runCli(["list", "password", "nope", "-C", site.configFile], { input: "x\n" })).code).toBe(
      67,
    );
    // a password on the command line is not an option at all
    expect((await runCli(["list", "password", "dev", "--password", "x", "-C", site.configFile])).code).toBe(
      64,
    );
    expect(await readFile(file, "utf8")).toBe(LIST_FILE);
    await writeFile(file, LIST_FILE + "nonsense_key: 1\n");
    expect((await runCli(["list", "password", "dev", "-C", site.configFile], { input: "x\n" })).code).toBe(
      78,
    );
  });
});

describe("qrunner list password on a terminal", () => {
  const hasPython = spawnSync("python3", ["-c", "import pty"]).status === 0;

  it.skipIf(!hasPython)("asks twice without echo; two different entries change nothing (64)", async () => {
    const { site, file } = await devSite();
    // a pseudo-terminal as stdin/stdout/stderr; the script types the answers and prints what the terminal showed
    const driver = `
import os, pty, sys, time
answers = [a.encode() + b"\\r" for a in sys.argv[-2:]]
cmd = sys.argv[1:-2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(cmd[0], cmd)
out = b""
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    out += data
    if answers and out.rstrip().endswith(b":"):
        time.sleep(0.05)
        os.write(fd, answers.pop(0))
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
`;
    const run = (a: string, b: string): { status: number | null; out: string } => {
      const r = spawnSync(
        "python3",
        ["-c", driver, process.execPath, BIN, "list", "password", "dev", "-C", site.configFile, a, b],
        { encoding: "utf8", timeout: 60_000 },
      );
      return { status: r.status, out: r.stdout };
    };
    // the two answers are the python script's last arguments; qrunner gets the ones before them
    const ok = run("typed secret", "typed secret");
    expect(ok.out).toContain("New moderator password:");
    expect(ok.out).toContain("Again:");
    expect(ok.out).not.toContain("typed secret");
    expect(ok.status, ok.out).toBe(0);
    expect(await verifyPassword("typed secret", passwordOf(await readFile(file, "utf8")))).toBe(true);

    const before = await readFile(file, "utf8");
    const differ = run("one thing", "another");
    expect(differ.status, differ.out).toBe(64);
    expect(differ.out).toContain("the two entries differ");
    expect(await readFile(file, "utf8")).toBe(before);
  });
});
