import { link, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Switchboard } from "../../src/queue/switchboard.js";
import { SPARE_DIR, SparePool } from "../../src/queue/spares.js";
import { encodeEntry } from "../../src/queue/entry.js";
import { tempDirEach } from "../helpers/tmp.js";

const tmp = tempDirEach();

const meta = { sender: "alice@example.net", recipients: ["dev@example.org"] };
const spareDir = (): string => path.join(tmp.dir, SPARE_DIR);

async function drain(sb: Switchboard): Promise<Buffer[]> {
  const got: Buffer[] = [];
  for (let e = await sb.dequeue(); e; e = await sb.dequeue()) {
    got.push(Buffer.from(e.message));
    await sb.finish(e);
  }
  return got;
}

describe("recycled entry files", () => {
  it("parks finished entries and builds later entries in the same inodes, across queues", async () => {
    const spares = new SparePool(tmp.dir);
    const incoming = await Switchboard.open({ root: tmp.dir, queue: "incoming", spares });
    const outgoing = await Switchboard.open({ root: tmp.dir, queue: "outgoing", spares });
    const big = Buffer.alloc(100_000, "b");
    for (let i = 0; i < 5; i++) await incoming.enqueue(i === 0 ? big : Buffer.from(`first ${i}`), meta);
    const inodes = new Set<number>();
    for (const n of await readdir(incoming.dir)) inodes.add((await stat(path.join(incoming.dir, n))).ino);
    expect(await drain(incoming)).toHaveLength(5);

    // five spares, the same inodes, and nothing left in the queue
    const parked = await readdir(spareDir());
    expect(parked).toHaveLength(5);
    for (const n of parked) expect(inodes.has((await stat(path.join(spareDir(), n))).ino)).toBe(true);
    expect(await readdir(incoming.dir)).toEqual([]);

    // the next entries, in another queue, reuse them and read back exactly, though shorter than the
    // 100 kB one whose bytes a spare still held
    const next = [0, 1, 2, 3, 4].map((i) => Buffer.from(`second ${i}\n`));
    for (const m of next) await outgoing.enqueue(m, meta);
    expect(await readdir(spareDir())).toEqual([]);
    for (const n of await readdir(outgoing.dir)) {
      const st = await stat(path.join(outgoing.dir, n));
      expect(inodes.has(st.ino)).toBe(true);
      expect(st.size).toBeLessThan(1000);
    }
    expect(await drain(outgoing)).toEqual(next);
  });

  it("never writes into a spare whose inode has another name too (a crash on an unordered filesystem)", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming" });
    const first = Buffer.from("Subject: acknowledged\n\nkeep me\n");
    await sb.enqueue(first, meta);
    const [name] = await readdir(sb.dir);
    // as after a crash that kept both the spare's old name and the entry's new one
    await mkdir(spareDir(), { recursive: true });
    await link(path.join(sb.dir, name ?? ""), path.join(spareDir(), "ghost"));
    await sb.enqueue(Buffer.from("Subject: second\n\nsecond\n"), meta);
    const got = await drain(sb);
    expect(got.map(String)).toEqual([String(first), "Subject: second\n\nsecond\n"]);
  });

  it("comes back when an operator removes the pool's directory", async () => {
    const spares = new SparePool(tmp.dir, { relistMs: 0 });
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming", spares });
    await sb.enqueue(Buffer.from("one"), meta);
    await drain(sb);
    await rm(spareDir(), { recursive: true });
    for (let i = 0; i < 2; i++) await sb.enqueue(Buffer.from(`m${i}`), meta);
    expect((await drain(sb)).map(String)).toEqual(["m0", "m1"]);
    expect(await readdir(spareDir())).toHaveLength(1); // the first finish after removal unlinks
    expect(await readdir(sb.dir)).toEqual([]);
  });

  it("unlinks entries an operator removes instead of recycling them", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "hold" });
    await sb.enqueue(Buffer.from("gone"), meta);
    const e = await sb.dequeue();
    await sb.remove(e!);
    expect(await readdir(sb.dir)).toEqual([]);
    await expect(readdir(spareDir())).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("writes over a spare that still holds bytes (a crash between parking and emptying) and cuts it to length", async () => {
    await mkdir(spareDir(), { recursive: true });
    await writeFile(path.join(spareDir(), "leftover"), Buffer.alloc(50_000, "z"));
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming" });
    const msg = Buffer.from("Subject: short\n\nshort\n");
    await sb.enqueue(msg, meta);
    expect(await readdir(spareDir())).toEqual([]); // it was taken
    const [name] = await readdir(sb.dir);
    const st = await stat(path.join(sb.dir, name ?? ""));
    const expected = Buffer.concat(
      encodeEntry({ version: 1, ...meta, received: 0, attempts: 0, failures: [], recoveries: 0 }, msg),
    );
    expect(st.size).toBeLessThan(50_000);
    expect(st.size).toBeGreaterThan(expected.length - 20); // the metadata's received time varies in length
    expect(await drain(sb)).toEqual([msg]);
  });

  it("keeps at most `max` spares and unlinks the rest", async () => {
    const spares = new SparePool(tmp.dir, { max: 3, relistMs: 0 });
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming", spares });
    for (let i = 0; i < 10; i++) await sb.enqueue(Buffer.from(`m${i}`), meta);
    await drain(sb);
    expect(await readdir(spareDir())).toHaveLength(3);
    expect(await readdir(sb.dir)).toEqual([]);
  });

  it("without a pool (spares: false) creates and unlinks every file", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming", spares: false });
    for (let i = 0; i < 3; i++) await sb.enqueue(Buffer.from(`m${i}`), meta);
    await drain(sb);
    await expect(readdir(spareDir())).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readdir(sb.dir)).toEqual([]);
  });

  it("lets another process's pool take the spares (found by listing), each exactly once", async () => {
    const a = await Switchboard.open({ root: tmp.dir, queue: "incoming", spares: new SparePool(tmp.dir) });
    const b1 = await Switchboard.open({
      root: tmp.dir,
      queue: "outgoing",
      spares: new SparePool(tmp.dir, { relistMs: 0 }),
    });
    const b2 = await Switchboard.open({
      root: tmp.dir,
      queue: "outgoing",
      spares: new SparePool(tmp.dir, { relistMs: 0 }),
    });
    for (let i = 0; i < 40; i++) await a.enqueue(Buffer.from(`a${i}`), meta);
    await drain(a);
    expect(await readdir(spareDir())).toHaveLength(40);
    // two writers race for the same spares: every entry must still be whole and distinct
    const msgs = Array.from({ length: 60 }, (_, i) => Buffer.from(`b${i}\n`));
    await Promise.all(msgs.map((m, i) => (i % 2 ? b1 : b2).enqueue(m, meta)));
    expect(await readdir(spareDir())).toEqual([]);
    const got = await drain(b1);
    expect(got.map(String).sort()).toEqual(msgs.map(String).sort());
    const inodes = new Set<number>();
    for (const n of await readdir(path.join(tmp.dir, "outgoing")))
      inodes.add((await stat(path.join(tmp.dir, "outgoing", n))).ino);
    expect(inodes.size).toBe((await readdir(path.join(tmp.dir, "outgoing"))).length);
  });

  it("falls back to creating and unlinking when a queue lives on another filesystem", async (ctx) => {
    let other: string;
    try {
      other = await mkdtemp(path.join("/dev/shm", "qrunner-test-"));
    } catch {
      ctx.skip(); // no tmpfs here: nothing to cross
      return;
    }
    try {
      if ((await stat(other)).dev === (await stat(tmp.dir)).dev) return ctx.skip();
      await symlink(other, path.join(tmp.dir, "outgoing"));
      const spares = new SparePool(tmp.dir);
      const incoming = await Switchboard.open({ root: tmp.dir, queue: "incoming", spares });
      const outgoing = await Switchboard.open({ root: tmp.dir, queue: "outgoing", spares });
      for (let i = 0; i < 3; i++) await incoming.enqueue(Buffer.from(`i${i}`), meta);
      await drain(incoming);
      const msgs = [0, 1, 2].map((i) => Buffer.from(`o${i}`));
      for (const m of msgs) await outgoing.enqueue(m, meta);
      expect(await drain(outgoing)).toEqual(msgs);
      expect(await readdir(other)).toEqual([]);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
