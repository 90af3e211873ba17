/**
 * `npm run demo` stays runnable: a small run of the built demo (its own receivers, the real master)
 * ends with nothing lost and exit 0.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO, requireBuild } from "../helpers/site.js";

beforeAll(() => requireBuild());

describe("npm run demo", () => {
  it("a small run delivers every post to every member through the outage, and exits 0", () => {
    const demo = path.join(REPO, "dist/demo/demo.js");
    expect(existsSync(demo), "dist/demo/demo.js: run `npm run build`").toBe(true);
    const r = spawnSync(
      process.execPath,
      [demo, "--posts=300", "--members=40", "--inject=4", "--clean", "--timeout=50"],
      {
        cwd: REPO,
        encoding: "utf8",
        timeout: 58_000,
      },
    );
    const out = r.stdout;
    expect(r.status, `${out}\n${r.stderr}`).toBe(0);
    expect(out).toMatch(/delivered\s+12,000 of 12,000/);
    expect(out).toMatch(/lost\s+0\n/);
    expect(out).toMatch(/duplicates\s+\d+/);
    // at most once per outage (none if no transaction happened to need primary-1 while it was down)
    expect(out).toMatch(/primary-1 down .*"cannot reach host" [01]x/);
    expect(out).toMatch(/result\s+OK/);
    // without a terminal: one progress line per second, not a redrawn block
    expect(out).not.toContain("\x1b[");
  });
});
