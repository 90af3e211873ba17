/**
 * `qrunner inject` and `qrunner start` skip commander when their command line is one the fast path in
 * src/cli/main.ts reads exactly as commander would. Each case here runs twice, through the fast path
 * and, with a `--` added (which only commander reads), through commander: the exit code and the
 * message must be the same. Real processes.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeSite, message, requireBuild, runCli, type Site } from "../helpers/site.js";

beforeAll(() => requireBuild());

let site: Site | undefined;
afterEach(async () => {
  await site?.cleanup();
  site = undefined;
});

const DEV = { address: "dev@example.org", members: ["bob@example.com"], extra: "archive: false" };

/** The same command through the fast path and through commander: code, stderr, and stdout's shape. */
async function both(fast: string[], slow: string[]) {
  const a = await runCli(fast);
  const b = await runCli(slow);
  // queue ids, and the log lines' time and pid, differ from run to run
  const shape = (s: string) =>
    s
      .replace(/[0-9a-f]{40}/g, "ID")
      .replace(/"time":"[^"]*"/g, "TIME")
      .replace(/"pid":\d+/g, "PID");
  expect({ code: a.code, stderr: a.stderr, stdout: shape(a.stdout) }).toEqual({
    code: b.code,
    stderr: b.stderr,
    stdout: shape(b.stdout),
  });
  return a;
}

describe("the inject fast path", () => {
  it("gives commander's exit codes and messages: 0, 65, 67, 75, and 64 for what it leaves to commander", async () => {
    site = await makeSite("", [DEV]);
    const cfg = site.configFile;
    const post = path.join(site.dir, "post.eml");
    const junk = path.join(site.dir, "junk.eml");
    await writeFile(post, message());
    await writeFile(junk, Buffer.from([0, 1, 2, 3, 255]));

    const ok = await both(
      ["inject", "--to=dev@example.org", "-C", cfg, post],
      ["inject", "--to=dev@example.org", "-C", cfg, "--", post],
    );
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^queued [0-9a-f]{40} in incoming for dev@example.org \(post\)\n$/);
    // every spelling of the options commander takes: --opt value, --opt=value, -Cvalue, an empty --from
    for (const args of [
      ["inject", "--to", "dev@example.org", `-C${cfg}`, "--from", "", post],
      ["inject", `--config=${cfg}`, "--from=", "--to=dev@example.org", post],
      ["inject", "-C", "/nonexistent.yaml", "--to=x@example.org", "-C", cfg, "--to=dev@example.org", post],
    ])
      expect((await both(args, [...args.slice(0, -1), "--", post])).code).toBe(0);
    expect(await site.files("incoming")).toHaveLength(8);

    expect(
      (
        await both(
          ["inject", "--to=dev@example.org", "-C", cfg, junk],
          ["inject", "--to=dev@example.org", "-C", cfg, "--", junk],
        )
      ).code,
    ).toBe(65);
    const missing = path.join(site.dir, "missing.eml");
    expect(
      (
        await both(
          ["inject", "--to=dev@example.org", "-C", cfg, missing],
          ["inject", "--to=dev@example.org", "-C", cfg, "--", missing],
        )
      ).code,
    ).toBe(65);
    const nouser = await both(
      ["inject", "--to=nobody@example.org", "-C", cfg, post],
      ["inject", "--to=nobody@example.org", "-C", cfg, "--", post],
    );
    expect(nouser.code).toBe(67);
    expect(nouser.stderr).toMatch(/no such list or address/);
    const badConfig = path.join(site.dir, "bad.yaml");
    await writeFile(badConfig, "qfiles: [\n");
    expect(
      (
        await both(
          ["inject", "--to=dev@example.org", "-C", badConfig, post],
          ["inject", "--to=dev@example.org", "-C", badConfig, "--", post],
        )
      ).code,
    ).toBe(75);

    // left to commander: help, unknown options, a second file
    const help = await runCli(["inject", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes \(sysexits/);
    const unknown = await runCli(["inject", "--bogus", "--to=dev@example.org", "-C", cfg, post]);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);
    const two = await runCli(["inject", "--to=dev@example.org", "-C", cfg, post, post]);
    expect(two.code).toBe(64);
    expect(await site.files("incoming")).toHaveLength(8);
  });
});

describe("the start fast path", () => {
  it("gives commander's exit codes and messages for a worker's command line", async () => {
    site = await makeSite("", [DEV]);
    const cfg = site.configFile;
    const cases: Array<[string[], number]> = [
      [["start", "--runner=incoming", "--slice=0/2", "--once", "-C", cfg], 0],
      [["start", "--instance", "archive:0-1", "--once", `--config=${cfg}`], 0],
      [["start", "--runner=nope", "--once", "-C", cfg], 64],
      [["start", "--runner=incoming", "--slice=2/2", "--once", "-C", cfg], 64],
      [["start", "--slice=0/2", "-C", cfg], 64],
      [["start", "--instance=bad", "-C", cfg], 64],
      [["start", "--runner=incoming", "--once", "-C", path.join(site.dir, "missing.yaml")], 78],
    ];
    for (const [args, code] of cases) {
      const r = await both(args, [...args, "--"]);
      expect({ args, code: r.code }).toEqual({ args, code });
    }
    const unknown = await runCli(["start", "--runner=incoming", "--bogus", "-C", cfg]);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);
    const help = await runCli(["start", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--runner <name>/);
  });
});
