import { spawn } from "node:child_process";
import { existsSync, promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidAddressError } from "../../src/lists/addresses.js";
import { takeReplySlot } from "../../src/lists/replies.js";
import { ListStateStore, StateCorruptError, StateLockError, listStateDir } from "../../src/lists/state.js";
import { emptyState } from "../../src/lists/state-shape.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DIST_STATE = path.join(ROOT, "dist/lists/state.js");

let tmp: string;
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qrunner-state-"));
});
afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** A worker process: `count` increments of the shared counter and of its own member's score. */
const WORKER = `
const [stateUrl, stateDir, list, me, count] = process.argv.slice(1);
const { ListStateStore } = await import(stateUrl);
const store = new ListStateStore(stateDir, list, { retries: 1000 });
for (let i = 0; i < Number(count); i++) {
  await store.update((s) => {
    s.unrecognisedBounces += 1;
    const m = (s.members[me] ??= { score: 0 });
    m.score += 1;
  });
}
`;

function runWorker(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", WORKER, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

describe("listStateDir", () => {
  it("puts a list under <state>/lists/<lowercased address>", () => {
    expect(listStateDir(tmp, "Dev@Example.org")).toBe(path.join(tmp, "lists", "dev@example.org"));
  });

  it.each([
    "../evil@example.org",
    "../../x",
    "a/b@example.org",
    "..",
    ".",
    "dev@example.org\n",
    "x\0@example.org",
    "",
  ])("refuses %j", (a) => {
    expect(() => listStateDir(tmp, a)).toThrow(InvalidAddressError);
    expect(() => new ListStateStore(tmp, a)).toThrow(InvalidAddressError);
  });
});

describe("ListStateStore", () => {
  it("reads an empty state before anything is written, without creating files", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    expect(await store.read()).toEqual(emptyState());
    expect(existsSync(path.join(tmp, "lists"))).toBe(false);
  });

  it("writes updates with 0600 files in 0700 directories and returns fn's result", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    const r = await store.update((s) => {
      s.added.push("carol@example.net");
      // the bounce scorer's MemberBounceState: lastCounted is a UTC day
      s.members["carol@example.net"] = {
        score: 2,
        lastBounce: 1000,
        lastCounted: "1970-01-01",
        disabled: { reason: "bounces", at: 1000 },
      };
      return "done";
    });
    expect(r).toBe("done");
    const s = await new ListStateStore(tmp, "DEV@example.org").read();
    expect(s.added).toEqual(["carol@example.net"]);
    expect(s.members["carol@example.net"]).toEqual({
      score: 2,
      lastBounce: 1000,
      lastCounted: "1970-01-01",
      disabled: { reason: "bounces", at: 1000 },
    });
    expect((await fsp.stat(store.file)).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(store.dir)).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(path.join(tmp, "lists"))).mode & 0o777).toBe(0o700);
    // no temp files or lock left behind
    expect(await fsp.readdir(store.dir)).toEqual(["state.json"]);
  });

  it("writes nothing when fn throws or changes nothing", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    await expect(
      store.update((s) => {
        s.unrecognisedBounces = 99;
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(existsSync(store.file)).toBe(false);
    await store.update(() => undefined);
    expect(existsSync(store.file)).toBe(false);
    // and the store still works after a failed update
    await store.update((s) => void (s.unrecognisedBounces = 1));
    expect((await store.read()).unrecognisedBounces).toBe(1);
  });

  it("keeps fields it does not know (written by a newer version)", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    await fsp.mkdir(store.dir, { recursive: true });
    await fsp.writeFile(
      store.file,
      JSON.stringify({ version: 1, future: { x: 1 }, members: { "a@b.example": { score: 1, extra: true } } }),
    );
    await store.update((s) => void (s.unrecognisedBounces += 1));
    const raw = JSON.parse(await fsp.readFile(store.file, "utf8")) as Record<string, unknown>;
    expect(raw["future"]).toEqual({ x: 1 });
    expect(raw["members"]).toEqual({ "a@b.example": { score: 1, extra: true } });
  });

  it("reports a corrupt state file as StateCorruptError naming the file", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    await fsp.mkdir(store.dir, { recursive: true });
    await fsp.writeFile(store.file, '{"version": 1, "added": [');
    await expect(store.read()).rejects.toThrow(StateCorruptError);
    await fsp.writeFile(store.file, '{"version": 2}');
    await expect(store.read()).rejects.toThrow(store.file);
    await expect(store.update(() => 1)).rejects.toThrow(StateCorruptError);
  });

  it.each([
    ["[]", "(top): Expected object, received array"],
    ['{"version": 2}', "version: Invalid literal value, expected 1"],
    ['{"version": 1, "added": "a@b.example"}', "added: Expected array, received string"],
    ['{"version": 1, "removed": ["a@b.example", 7]}', "removed.1: Expected string, received number"],
    [
      '{"version": 1, "members": {"a@b.example": {"score": "3"}}}',
      "members.a@b.example.score: Expected number, received string",
    ],
    [
      '{"version": 1, "members": {"a@b.example": {"disabled": {"reason": "bounces"}}}}',
      "members.a@b.example.disabled.at: Required",
    ],
    [
      '{"version": 1, "replies": {"a@b.example": [1, null]}}',
      "replies.a@b.example.1: Expected number, received null",
    ],
    [
      '{"version": 1, "tokens": {"t": {"action": "stay", "address": "a@b.example", "created": 1, "expires": 2}}}',
      "tokens.t.action: Invalid enum value. Expected 'join' | 'leave' | 'moderate', received 'stay'",
    ],
    [
      '{"version": 1, "tokens": {"t": {"action": "join", "created": 1, "expires": 2}}}',
      "tokens.t.address: Required",
    ],
    ['{"version": 1, "unrecognisedBounces": 1.5}', "unrecognisedBounces: Expected integer, received float"],
    [
      '{"version": 1, "unrecognisedBounces": -1}',
      "unrecognisedBounces: Number must be greater than or equal to 0",
    ],
  ])("says where a state file is wrong and what is wrong: %s", async (text, detail) => {
    const store = new ListStateStore(tmp, "dev@example.org");
    await fsp.mkdir(store.dir, { recursive: true });
    await fsp.writeFile(store.file, text);
    await expect(store.read()).rejects.toThrow(
      `${store.file}: not a readable list state file (${detail}); repair it or move it away`,
    );
  });

  it("fills in absent fields, keeps unknown ones in their place and drops unknown token fields", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    await fsp.mkdir(store.dir, { recursive: true });
    const token = { action: "leave", address: "a@b.example", created: 1, expires: 2, junk: 1 };
    await fsp.writeFile(
      store.file,
      JSON.stringify({ future: 1, version: 1, members: { "a@b.example": { x: 1 } }, tokens: { t: token } }),
    );
    const s = await store.read();
    expect(JSON.stringify(s)).toBe(
      JSON.stringify({
        version: 1,
        added: [],
        removed: [],
        members: { "a@b.example": { score: 0, x: 1 } },
        replies: {},
        tokens: { t: { action: "leave", address: "a@b.example", created: 1, expires: 2 } },
        unrecognisedBounces: 0,
        future: 1,
      }),
    );
  });

  it("takes over a stale lock left by a dead process", async () => {
    const store = new ListStateStore(tmp, "dev@example.org", { stale: 2000, retries: 0 });
    await fsp.mkdir(`${store.file}.lock`, { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await fsp.utimes(`${store.file}.lock`, old, old);
    await store.update((s) => void (s.unrecognisedBounces = 5));
    expect((await store.read()).unrecognisedBounces).toBe(5);
  });

  it("gives up with StateLockError while a live lock is held and retries run out", async () => {
    const store = new ListStateStore(tmp, "dev@example.org", { retries: 2 });
    await fsp.mkdir(`${store.file}.lock`, { recursive: true });
    await expect(store.update(() => 1)).rejects.toThrow(StateLockError);
  });

  it("serialises concurrent updates within one process", async () => {
    const store = new ListStateStore(tmp, "dev@example.org");
    const other = new ListStateStore(tmp, "dev@example.org");
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? store : other).update((s) => void (s.unrecognisedBounces += 1)),
      ),
    );
    expect((await store.read()).unrecognisedBounces).toBe(40);
  });

  it("loses no update from 4 processes × 50 increments, and readers never see a torn file", async () => {
    expect(existsSync(DIST_STATE), "build first: npx tsc -p tsconfig.build.json").toBe(true);
    const store = new ListStateStore(tmp, "dev@example.org");
    // a large file, so that a non-atomic write would be caught half-written
    await store.update((s) => {
      for (let i = 0; i < 3000; i++) s.members[`member${i}@example.net`] = { score: 0, lastBounce: i };
    });
    const url = pathToFileURL(DIST_STATE).href;
    const workers = Array.from({ length: 4 }, (_, w) =>
      runWorker([url, tmp, "dev@example.org", `w${w}@example.net`, "50"]),
    );

    let reads = 0;
    let done = false;
    const all = Promise.all(workers).finally(() => (done = true));
    while (!done) {
      const s = await store.read(); // throws StateCorruptError on a torn file
      expect(Object.keys(s.members).length).toBeGreaterThanOrEqual(3000);
      reads++;
    }
    const results = await all;
    for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0 });

    const s = await store.read();
    expect(s.unrecognisedBounces).toBe(200);
    for (let w = 0; w < 4; w++) expect(s.members[`w${w}@example.net`]?.score).toBe(50);
    expect(reads).toBeGreaterThan(0);
    expect((await fsp.readdir(store.dir)).sort()).toEqual(["state.json"]);
  }, 120_000);
});

describe("takeReplySlot", () => {
  it("allows max_replies_per_hour replies per address per hour and prunes old records", () => {
    const s = emptyState();
    const H = 3_600_000;
    expect([1, 2, 3].map((t) => takeReplySlot(s, "a@Example.net", t, 3))).toEqual([true, true, true]);
    expect(takeReplySlot(s, "a@example.net", 4, 3)).toBe(false);
    expect(takeReplySlot(s, "b@example.net", 4, 3)).toBe(true);
    expect(s.replies["a@example.net"]).toEqual([1, 2, 3]);
    expect(takeReplySlot(s, "a@example.net", H + 2, 3)).toBe(true); // the first has aged out
    expect(s.replies["a@example.net"]).toEqual([3, H + 2]);
    takeReplySlot(s, "c@example.net", 3 * H, 3);
    expect(Object.keys(s.replies)).toEqual(["c@example.net"]);
  });
});
