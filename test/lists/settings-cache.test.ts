import { chmod, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadAllCached } from "../../src/lists/settings-cache.js";
import { makeSite, type Site } from "../helpers/site.js";
import { tempDir } from "../helpers/tmp.js";

let site: Site;
let cacheDir: string;
let cleanupCache: () => Promise<void>;
beforeEach(async () => {
  site = await makeSite("", [{ address: "dev@example.org", members: ["a@example.net"] }]);
  ({ dir: cacheDir, cleanup: cleanupCache } = await tempDir("qrunner-cache-"));
  process.env["QRUNNER_CACHE_DIR"] = cacheDir;
});
afterEach(async () => {
  delete process.env["QRUNNER_CACHE_DIR"];
  await site.cleanup();
  await cleanupCache();
});

async function cacheFile(): Promise<string> {
  const [name] = await readdir(cacheDir);
  return path.join(cacheDir, name!);
}

describe("settings cache for inject", () => {
  it("answers from the cache until a file it was built from changes", async () => {
    const first = await loadAllCached(site.configFile);
    expect([...first.lists.keys()]).toEqual(["dev@example.org"]);
    const file = await cacheFile();
    // poison the cached copy: a hit must return it, proving no reload happened
    const data = JSON.parse(await readFile(file, "utf8")) as { config: { qfiles: string } };
    data.config.qfiles = "/from-cache";
    await writeFile(file, JSON.stringify(data), { mode: 0o600 });
    expect((await loadAllCached(site.configFile)).config.qfiles).toBe("/from-cache");

    // a new list file: the lists folder changed, so a full load
    await site.writeList({ address: "ops@example.org", members: [] });
    const after = await loadAllCached(site.configFile);
    expect(after.config.qfiles).toBe(site.qfiles);
    expect([...after.lists.keys()].sort()).toEqual(["dev@example.org", "ops@example.org"]);

    // an edited list file (same size, new mtime) is a miss too
    const listFile = path.join(site.listsDir, "dev@example.org.yaml");
    const text = await readFile(listFile, "utf8");
    await writeFile(listFile, text.replace("a@example.net", "b@example.net"));
    await utimes(listFile, new Date(), new Date(Date.now() + 5000));
    expect((await loadAllCached(site.configFile)).lists.get("dev@example.org")?.allMembers).toEqual([
      "b@example.net",
    ]);
  });

  it("ignores a cache file that others could have written", async () => {
    await loadAllCached(site.configFile);
    const file = await cacheFile();
    const data = JSON.parse(await readFile(file, "utf8")) as { config: { qfiles: string } };
    data.config.qfiles = "/planted";
    await writeFile(file, JSON.stringify(data));
    await chmod(file, 0o666);
    expect((await loadAllCached(site.configFile)).config.qfiles).toBe(site.qfiles);
  });
});
