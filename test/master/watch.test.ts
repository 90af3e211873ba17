import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigWatcher } from "../../src/master/watch.js";
import { silentLogger } from "../../src/util/log.js";
import { waitFor } from "./helpers.js";

let dir: string;
let watcher: ConfigWatcher | null = null;
let calls: string[][] = [];
let configFile: string;
let listsDir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-watch-"));
  configFile = path.join(dir, "qrunner.yaml");
  listsDir = path.join(dir, "lists");
  await mkdir(listsDir);
  await writeFile(configFile, "a: 1\n");
  calls = [];
  watcher = await ConfigWatcher.start({
    configFile,
    listsDir,
    logger: silentLogger(),
    debounceMs: 200,
    onChange: (paths) => calls.push(paths),
  });
});
afterEach(async () => {
  await watcher?.close();
  await watcher?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("ConfigWatcher", () => {
  it("reports an in-place write once, however many writes the burst holds", async () => {
    for (let i = 0; i < 5; i++) await writeFile(configFile, `a: ${i}\n`);
    await waitFor("a change", () => calls.length === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toContain(configFile);
  });

  it("follows an editor's save by rename, again and again", async () => {
    for (let i = 0; i < 3; i++) {
      const tmp = path.join(dir, `.qrunner.yaml.${i}`);
      await writeFile(tmp, `a: ${i + 10}\n`);
      await rename(tmp, configFile);
      await waitFor(`change ${i + 1}`, () => calls.length === i + 1);
    }
  });

  it("notices the file removed and written again later", async () => {
    await unlink(configFile);
    await waitFor("the removal", () => calls.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(configFile, "a: 2\n");
    await waitFor("the new file", () => calls.length === 2);
  });

  it("reports list files added, changed and removed, and follows a moved lists folder", async () => {
    const list = path.join(listsDir, "dev@example.org.yaml");
    await writeFile(list, "address: dev@example.org\n");
    await waitFor("the new list", () => calls.length === 1);
    await writeFile(list, "address: dev@example.org\nowners: [a@example.org]\n");
    await waitFor("the edit", () => calls.length === 2);
    const moved = path.join(dir, "lists2");
    await mkdir(moved);
    watcher!.setListsDir(moved);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(path.join(moved, "x@example.org.yaml"), "address: x@example.org\n");
    await waitFor("a list in the new folder", () => calls.some((c) => c.some((p) => p.startsWith(moved))));
  });
});
