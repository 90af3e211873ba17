/** `qrunner config check` as a real process, on real files. */
import { execFile, execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { lines, tempDirEach } from "../config/helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = path.join(root, "bin/qrunner");

function mtime(f: string): number {
  try {
    return statSync(f).mtimeMs;
  } catch {
    return 0;
  }
}

beforeAll(() => {
  // `npm test` builds first; build here too when dist/ is missing or older than the code under test
  const sources = [
    "src/cli/config-check.ts",
    "src/config/load.ts",
    "src/config/yaml.ts",
    "src/config/issues.ts",
    "src/lists/load.ts",
  ];
  const built = mtime(path.join(root, "dist/cli/config-check.js"));
  if (
    sources.some((s) => mtime(path.join(root, s)) > built) ||
    mtime(path.join(root, "dist/cli/main.js")) === 0
  ) {
    try {
      execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "ignore" });
    } catch {
      // type errors elsewhere in the tree still emit; the runs below show whether the CLI works
    }
  }
}, 120_000);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: opts.cwd ?? root, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
        resolve({ code: typeof code === "number" ? code : null, stdout, stderr });
      },
    );
  });
}

const t = tempDirEach("qrunner-config-");

describe("qrunner config check", () => {
  it("exits 0 with a one-line summary for a valid config and lists", async () => {
    const cfg = await t.write(
      "etc/qrunner.yaml",
      lines(
        "lists: lists",
        "smtp:",
        "  hosts: [{ host: a }, { host: b, weight: 2 }]",
        "runners: { incoming: { instances: 3 } }",
      ),
    );
    await t.write(
      "etc/lists/dev@example.org.yaml",
      lines("address: dev@example.org", "owners: [o@example.org]"),
    );
    await t.write(
      "etc/lists/ops@example.org.yaml",
      lines("address: ops@example.org", "owners: [o@example.org]"),
    );
    const r = await run(["config", "check", "-C", cfg]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(
      new RegExp(
        `^${cfg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: OK \\(version [0-9a-f]{12}\\): 2 lists, 2 SMTP hosts, 6 runners / 9 instances\\n$`,
      ),
    );
  });

  it("exits 1 and prints every error as file:line:col: message on stderr", async () => {
    const cfg = await t.write(
      "etc/qrunner.yaml",
      lines("lists: lists", "log: { level: loud }", "smtp: { probe_max: soon }"),
    );
    const list = await t.write(
      "etc/lists/dev@example.org.yaml",
      lines("address: dev@example.org", "owners: [o@example.org]", "members_file: dev.members"),
    );
    const members = await t.write("etc/lists/dev.members", lines("a@example.net", "not-an-address"));
    const r = await run(["config", "check", "--config", cfg]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n")).toEqual([
      `${cfg}:2:15: log.level: expected one of trace, debug, info, warn, error, fatal, silent; got "loud"`,
      `${cfg}:3:20: smtp.probe_max: not a duration: "soon" (use e.g. 30s, 5m, 1h, 5d)`,
      `${members}:2:1: not a plain mail address (local@domain): "not-an-address"`,
      "",
    ]);
    void list;
  });

  it("takes the config from $QRUNNER_CONFIG, else config/qrunner.yaml under the current directory", async () => {
    const cfg = await t.write("config/qrunner.yaml", lines("lists: lists"));
    const fromEnv = await run(["config", "check"], { env: { ...process.env, QRUNNER_CONFIG: cfg } });
    expect(fromEnv.code).toBe(0);
    const env = { ...process.env };
    delete env["QRUNNER_CONFIG"];
    const fromCwd = await run(["config", "check"], { cwd: t.dir, env });
    expect(fromCwd.code).toBe(0);
    expect(fromCwd.stdout).toContain(`${cfg}: OK`);
    const missing = await run(["config", "check", "-C", path.join(t.dir, "none.yaml")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      `${path.join(t.dir, "none.yaml")}:1:1: the config file does not exist (give one with -C FILE or $QRUNNER_CONFIG)\n`,
    );
  });

  it("accepts the shipped config/qrunner.yaml and its example list", async () => {
    const r = await run(["config", "check", "-C", path.join(root, "config/qrunner.yaml")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(": OK (version ");
    expect(r.stdout).toContain("1 list, 1 SMTP host, 6 runners / 6 instances");
  });

  it("has help with an example", async () => {
    const r = await run(["config", "check", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Example:\n  qrunner config check");
  });
});
