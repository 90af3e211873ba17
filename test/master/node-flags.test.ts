/**
 * The workers' node options: only those the running node accepts are passed on, asked of a real node
 * (`node OPTION -e 0`), and the answers kept per node binary and version.
 */
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { mkdtemp, rm } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { acceptedNodeFlags, nodeAccepts } from "../../src/master/node-flags.js";
import { WORKER_EXEC_ARGV } from "../../src/master/slot.js";
import { silentLogger } from "../../src/util/log.js";

const log = silentLogger();
const BOGUS = "--qrunner-no-such-option=1";
let dir: string | null = null;

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = null;
});

/** What this node says of one option, asked directly. */
const runs = (flag: string) => spawnSync(process.execPath, [flag, "-e", "0"]).status === 0;

describe("acceptedNodeFlags", () => {
  it("keeps the options this node accepts, in order, and leaves out one it refuses", async () => {
    // --max-semi-space-size is a listed node option, --stack-size a V8 option Node does not list
    const got = await acceptedNodeFlags(["--max-semi-space-size=1", BOGUS, "--stack-size=984"], {
      cacheFile: null,
      logger: log,
    });
    expect(got).toEqual(["--max-semi-space-size=1", "--stack-size=984"]);
  });

  it("passes on exactly the worker options this node runs with", async () => {
    const got = await acceptedNodeFlags(WORKER_EXEC_ARGV, { cacheFile: null, logger: log });
    expect(got).toEqual(WORKER_EXEC_ARGV.filter(runs));
    // and the worker command line it makes starts on this node
    expect(spawnSync(process.execPath, [...got, "-e", "0"]).status).toBe(0);
  });

  it("keeps the answers for this node and version, and asks again for another version", async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-flags-"));
    const cacheFile = path.join(dir, "node-flags.json");
    expect(await acceptedNodeFlags([BOGUS, "--stack-size=984"], { cacheFile, logger: log })).toEqual([
      "--stack-size=984",
    ]);
    const kept = JSON.parse(await readFile(cacheFile, "utf8")) as Record<string, unknown>;
    expect(kept).toEqual({
      node: process.execPath,
      version: process.version,
      accepted: { [BOGUS]: false, "--stack-size=984": true },
    });
    // the kept answer is what counts for this node (no trial: a made-up answer shows it)
    await writeFile(cacheFile, JSON.stringify({ ...kept, accepted: { [BOGUS]: true } }));
    expect(await acceptedNodeFlags([BOGUS], { cacheFile, logger: log })).toEqual([BOGUS]);
    // answers of another version are not trusted
    await writeFile(cacheFile, JSON.stringify({ ...kept, version: "v0.0.1", accepted: { [BOGUS]: true } }));
    expect(await acceptedNodeFlags([BOGUS], { cacheFile, logger: log })).toEqual([]);
  });

  it("counts a node that cannot be run as refusing everything", async () => {
    expect(await nodeAccepts("/nonexistent/node", [], 5000)).toBe(false);
    expect(
      await acceptedNodeFlags(["--stack-size=984"], {
        cacheFile: null,
        logger: log,
        nodePath: "/nonexistent/node",
      }),
    ).toEqual([]);
  });
});
