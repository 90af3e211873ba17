/**
 * A qrunner site in a temp dir for end-to-end tests: config/qrunner.yaml, lists/, qfiles/, var/,
 * and ways to run the real CLI against it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = path.join(REPO, "bin/qrunner");

export function requireBuild(): void {
  if (!existsSync(path.join(REPO, "dist/cli/main.js")))
    throw new Error("dist/ is missing: run `npm run build` first");
}

export interface ListSpec {
  address: string;
  owners?: string[];
  members?: string[];
  /** extra YAML lines for the list file */
  extra?: string;
}

export interface Site {
  dir: string;
  configFile: string;
  qfiles: string;
  state: string;
  listsDir: string;
  writeConfig(yaml: string): Promise<void>;
  writeList(spec: ListSpec): Promise<void>;
  /** names of the files in a queue directory */
  files(queue: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

/** The config head every site shares; append runner, smtp and backoff sections as needed. */
export const CONFIG_HEAD = "qfiles: ../qfiles\nstate: ../var\nlists: ../lists\nlog: { level: info }\n";

export async function makeSite(configBody = "", lists: ListSpec[] = []): Promise<Site> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-e2e-"));
  const configFile = path.join(dir, "config", "qrunner.yaml");
  const listsDir = path.join(dir, "lists");
  await mkdir(path.dirname(configFile), { recursive: true, mode: 0o750 });
  await mkdir(listsDir, { recursive: true, mode: 0o750 });
  const site: Site = {
    dir,
    configFile,
    qfiles: path.join(dir, "qfiles"),
    state: path.join(dir, "var"),
    listsDir,
    writeConfig: (yaml) => writeFile(configFile, CONFIG_HEAD + yaml, { mode: 0o640 }),
    writeList: (spec) =>
      writeFile(
        path.join(listsDir, `${spec.address}.yaml`),
        [
          `address: ${spec.address}`,
          `owners: [${(spec.owners ?? [`owner@${spec.address.split("@")[1]}`]).join(", ")}]`,
          `members: [${(spec.members ?? []).join(", ")}]`,
          spec.extra ?? "",
        ].join("\n") + "\n",
        // 0750 folders and 0640 files whatever the umask: `start` refuses group- or world-writable ones
        { mode: 0o640 },
      ),
    files: async (queue) => readdir(path.join(dir, "qfiles", queue)).catch(() => []),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  await site.writeConfig(configBody);
  for (const l of lists) await site.writeList(l);
  return site;
}

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `qrunner ARGS` (as root it passes QRUNNER_ALLOW_ROOT=1). */
export function spawnCli(
  args: string[],
  opts: { input?: Buffer | string; env?: Record<string, string> } = {},
): Running {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO,
    env: { ...process.env, QRUNNER_ALLOW_ROOT: "1", ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  child.stdin?.on("error", () => undefined);
  child.stdin?.end(opts.input ?? "");
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Run `qrunner ARGS` to completion. */
export async function runCli(
  args: string[],
  opts: { input?: Buffer | string; env?: Record<string, string> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = spawnCli(args, opts);
  const { code } = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** Poll until `cond` holds (checked every 50 ms), or fail after `timeoutMs` saying what was awaited. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** JSON log lines of a process's stdout. */
export function logLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A small RFC 5322 message. */
export function message(
  opts: { from?: string; to?: string; subject?: string; id?: string; body?: string; headers?: string[] } = {},
): Buffer {
  const id = opts.id ?? `<${Math.random().toString(36).slice(2)}@test.example>`;
  return Buffer.from(
    [
      `From: ${opts.from ?? "alice@example.net"}`,
      `To: ${opts.to ?? "dev@example.org"}`,
      `Subject: ${opts.subject ?? "hello"}`,
      `Message-ID: ${id}`,
      `Date: Sat, 28 Nov 2026 12:00:00 +0000`,
      ...(opts.headers ?? []),
      "",
      opts.body ?? "Hello, list.",
      "",
    ].join("\r\n"),
  );
}
