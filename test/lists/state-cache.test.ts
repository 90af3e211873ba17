import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ListStateCache } from "../../src/lists/state-cache.js";
import { ListStateStore, StateCorruptError } from "../../src/lists/state.js";
import { emptyState } from "../../src/lists/state-shape.js";

const LIST = "dev@example.org";
let tmp: string;
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qrunner-state-cache-"));
});
afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe("ListStateCache", () => {
  it("parses a state once, and again as soon as a writer replaced it", async () => {
    const cache = new ListStateCache(tmp);
    expect(await cache.read(LIST)).toEqual(emptyState());
    const store = new ListStateStore(tmp, LIST);
    await store.update((s) => {
      s.members["carol@example.net"] = { score: 5, disabled: { reason: "bounces", at: 1000 } };
    });
    const first = await cache.read(LIST);
    expect(first.members["carol@example.net"]?.disabled?.reason).toBe("bounces");
    expect(await cache.read(LIST)).toBe(first); // unchanged: the same parsed object
    await store.update((s) => {
      delete s.members["carol@example.net"];
    });
    const second = await cache.read(LIST);
    expect(second).not.toBe(first);
    expect(second.members["carol@example.net"]).toBeUndefined();
  });

  it("reports a damaged state every time, and recovers once it is repaired", async () => {
    const cache = new ListStateCache(tmp);
    const store = new ListStateStore(tmp, LIST);
    await store.update(() => undefined);
    await fsp.writeFile(store.file, "{ not json");
    await expect(cache.read(LIST)).rejects.toBeInstanceOf(StateCorruptError);
    await expect(cache.read(LIST)).rejects.toBeInstanceOf(StateCorruptError);
    await fsp.rm(store.file);
    expect(await cache.read(LIST)).toEqual(emptyState());
  });
});
