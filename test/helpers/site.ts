/**
 * A qrunner site in a temp dir for end-to-end tests: config/qrunner.yaml, lists/, qfiles/, var/,
 * and ways to run the real CLI against it.
 */
import { mkdtemp, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runCli, type SpawnOptions } from "./process.js";

export { BIN, REPO, alive, requireBuild, runCli, spawnCli, stop, waitFor, type Running } from "./process.js";

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

export async function makeSite(
  configBody = "",
  lists: ListSpec[] = [],
  prefix = "qrunner-e2e-",
): Promise<Site> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
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

/**
 * Config lines for a site that drains in seconds: every runner polls every 300 ms, backoff retries
 * after 300 ms. `outgoing`: more keys for the outgoing runner (", concurrency: 16").
 */
export function quickRunners(outgoing = ""): string {
  return [
    "runners:",
    "  incoming: { sleep: 300ms }",
    `  outgoing: { sleep: 300ms${outgoing} }`,
    "  command: { sleep: 300ms }",
    "  bounce: { sleep: 300ms }",
    "  archive: { sleep: 300ms, nice: 0 }",
    "backoff: { schedule: [300ms], max_age: 1h }",
    "",
  ].join("\n");
}

/** `qrunner start --runner=RUNNER --slice=0/1 --once` on a site: one pass over the whole queue. */
export function runOnce(
  site: Pick<Site, "configFile">,
  runner: string,
  opts: SpawnOptions = {},
): ReturnType<typeof runCli> {
  return runCli(["start", "-C", site.configFile, `--runner=${runner}`, "--slice=0/1", "--once"], opts);
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
