import { randomBytes } from "node:crypto";
import { readdir, writeFile, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { queueStats } from "../../src/queue/stats.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { makeSlice, inSlice } from "../../src/queue/slice.js";
import { parseName } from "../../src/queue/names.js";
import { tempDirEach } from "../helpers/tmp.js";

const tmp = tempDirEach();

const meta = { sender: "alice@example.net", recipients: ["dev@example.org"] };

describe("Switchboard", () => {
  it("keeps message bytes of every kind exactly: 8-bit, CRLF, lone CR and LF, NUL", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming" });
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const samples = [
      Buffer.from("Subject: hi\r\n\r\nbody\r\n", "latin1"),
      Buffer.from("Subject: hi\n\nbody\n", "latin1"),
      Buffer.concat([Buffer.from("Subject: bin\r\n\r\n"), all, all, Buffer.from("\r\r\n\n\0")]),
      randomBytes(200_000),
      Buffer.alloc(0),
    ];
    for (const s of samples) await sb.enqueue(s, meta);
    const got: Buffer[] = [];
    for (let e = await sb.dequeue(); e; e = await sb.dequeue()) {
      got.push(Buffer.from(e.message));
      expect(e.meta).toMatchObject({ version: 1, ...meta, attempts: 0, recoveries: 0, failures: [] });
      await sb.finish(e);
    }
    expect(got).toEqual(samples);
    expect(await readdir(sb.dir)).toEqual([]);
  });

  it("names files <time>+<sha1>.qf, unique even for identical messages, oldest first", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming" });
    const msg = Buffer.from("Subject: same\n\nsame\n");
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await sb.enqueue(msg, meta));
    expect(new Set(ids).size).toBe(50);
    const names = await readdir(sb.dir);
    for (const n of names) expect(n).toMatch(/^\d{10}\.\d{6}\+[0-9a-f]{40}\.qf$/);
    const order: string[] = [];
    for (let e = await sb.dequeue(); e; e = await sb.dequeue()) {
      order.push(e.id);
      await sb.finish(e);
    }
    expect(order).toEqual(ids);
  });

  it("lists only its own slice", async () => {
    const all = await Switchboard.open({ root: tmp.dir, queue: "outgoing" });
    for (let i = 0; i < 300; i++) await all.enqueue(Buffer.from(`m${i}`), meta);
    const seen = new Set<string>();
    for (let k = 0; k < 3; k++) {
      const slice = makeSlice(k, 3);
      const sb = await Switchboard.open({ root: tmp.dir, queue: "outgoing", slice });
      for (let e = await sb.dequeue(); e; e = await sb.dequeue()) {
        expect(inSlice(slice, e.id)).toBe(true);
        expect(seen.has(e.id)).toBe(false);
        seen.add(e.id);
        await sb.finish(e);
      }
    }
    expect(seen.size).toBe(300);
  });

  it("does not hand out entries before they are due", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "backoff" });
    await sb.enqueue(Buffer.from("later"), meta, { notBefore: Date.now() + 60_000 });
    const nowId = await sb.enqueue(Buffer.from("now"), meta);
    const e = await sb.dequeue();
    expect(e?.id).toBe(nowId);
    await sb.finish(e!);
    expect(await sb.dequeue()).toBeNull();
    expect(await sb.dequeue(Date.now() + 61_000)).not.toBeNull();
  });

  it("moves a corrupt or truncated file to bad and goes on", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming" });
    const goodId = await sb.enqueue(Buffer.from("Subject: ok\n\nok\n"), meta);
    const [name] = await readdir(sb.dir);
    const data = await readFile(path.join(sb.dir, name!));
    const base = "0000000001.000000+" + "a".repeat(40);
    await writeFile(path.join(sb.dir, base + ".qf"), data.subarray(0, data.length - 3));
    await writeFile(path.join(sb.dir, "0000000002.000000+" + "b".repeat(40) + ".qf"), "junk\n");
    const e = await sb.dequeue();
    expect(e?.id).toBe(goodId);
    const bad = await readdir(path.join(tmp.dir, "bad"));
    expect(bad).toHaveLength(2);
    expect(await sb.dequeue()).toBeNull();
  });

  it("removes an empty entry file (a write a crash cut before its fsync) instead of keeping it in bad", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming" });
    await writeFile(path.join(sb.dir, "0000000001.000000+" + "c".repeat(40) + ".qf"), "");
    const goodId = await sb.enqueue(Buffer.from("Subject: ok\n\nok\n"), meta);
    expect((await sb.dequeue())?.id).toBe(goodId);
    expect(await readdir(sb.dir)).toEqual([expect.stringMatching(/\.wip$/)]);
    expect(await readdir(path.join(tmp.dir, "bad")).catch(() => [])).toEqual([]);
  });

  it("recovers in-progress entries after a crash, and shunts a poison entry past the limit", async () => {
    const shunt = await Switchboard.open({ root: tmp.dir, queue: "shunt" });
    const id = await (
      await Switchboard.open({ root: tmp.dir, queue: "incoming" })
    ).enqueue(Buffer.from("x"), meta);
    for (let crash = 1; crash <= 3; crash++) {
      // a fresh Switchboard per "process": take the entry, then crash (never finish)
      const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming", recoveryLimit: 2 });
      expect((await sb.recover(shunt)).recovered).toBe(crash === 1 ? 0 : 1);
      const e = await sb.dequeue();
      expect(e?.id).toBe(id);
      expect(e?.meta.recoveries).toBe(crash - 1);
    }
    const sb = await Switchboard.open({ root: tmp.dir, queue: "incoming", recoveryLimit: 2 });
    expect(await sb.recover(shunt)).toEqual({ recovered: 0, shunted: 1 });
    expect(await sb.dequeue()).toBeNull();
    const s = await shunt.dequeue();
    expect(s?.id).toBe(id);
    expect(s?.meta.shuntedFrom).toBe("incoming");
    expect(s?.meta.shuntReason).toMatch(/poison/);
  });

  it("requeue keeps the id, writes the successor first, and recovery drops a stale .wip twin", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "backoff" });
    const id = await sb.enqueue(Buffer.from("x"), meta);
    const e = (await sb.dequeue())!;
    await sb.requeue(e, { ...e.meta, attempts: 1 }, Date.now() - 1);
    const again = (await sb.dequeue())!;
    expect(again.id).toBe(id);
    expect(again.meta.attempts).toBe(1);
    // simulate a crash inside requeue: the successor is queued, the old .wip still there
    await sb.enqueueMany([{ message: again.message, meta: again.meta, id, notBefore: Date.now() - 1 }]);
    expect(await sb.recover()).toEqual({ recovered: 0, shunted: 0 });
    const names = await readdir(sb.dir);
    expect(names.map((n) => parseName(n)?.ext)).toEqual(["qf"]);
  });

  it("group-commits concurrent enqueues and loses none", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "outgoing" });
    /** message text by id: what each entry must hold when read back */
    const sent = new Map<string, string>();
    const texts = Array.from({ length: 200 }, (_, i) => `m${i} ${randomBytes(8).toString("hex")}`);
    const ids = await Promise.all(texts.map((t) => sb.enqueue(Buffer.from(t), meta)));
    ids.forEach((id, i) => sent.set(id, texts[i]!));
    expect(sent.size).toBe(200);
    expect((await queueStats(tmp.dir, "outgoing")).depth).toBe(200);
    // grouped: the 200 renames share a few directory fsyncs (one each without group commit)
    expect(sb.directoryFsyncs).toBeGreaterThan(0);
    expect(sb.directoryFsyncs).toBeLessThanOrEqual(10);
    for (const batch of ["n", "o"]) {
      const before = sb.directoryFsyncs;
      const items = Array.from({ length: 50 }, (_, i) => ({ message: Buffer.from(`${batch}${i}`), meta }));
      const many = await sb.enqueueMany(items);
      expect(many).toHaveLength(50);
      many.forEach((id, i) => sent.set(id, `${batch}${i}`));
      expect(sb.directoryFsyncs - before).toBe(1); // one batch, one directory fsync
    }
    const st = await queueStats(tmp.dir, "outgoing");
    expect(st.depth).toBe(300);
    expect(st.inProgress).toBe(0);
    expect(st.oldest).not.toBeNull();
    // every entry intact: its own bytes and its meta under its id, none twice, none missing
    const got = new Map<string, string>();
    for (let e = await sb.dequeue(); e; e = await sb.dequeue()) {
      expect(got.has(e.id)).toBe(false);
      got.set(e.id, e.message.toString());
      expect(e.meta).toMatchObject(meta);
      await sb.finish(e);
    }
    expect(got).toEqual(sent);
  });
});

describe("Switchboard.recoverAbandoned", () => {
  it("puts back old .wip files of a runner-less queue and leaves young ones alone", async () => {
    const sb = await Switchboard.open({ root: tmp.dir, queue: "hold" });
    await sb.enqueue(Buffer.from("a"), meta);
    await sb.enqueue(Buffer.from("b"), meta);
    const a = (await sb.dequeue())!;
    expect(await sb.recoverAbandoned(60_000)).toBe(0);
    // ctime comes from the kernel's coarse clock: give it a margin over Date.now()
    await new Promise((r) => setTimeout(r, 50));
    expect(await sb.recoverAbandoned(20)).toBe(1);
    const again = await sb.dequeue();
    expect([a.id]).toContain(again?.id ?? "none");
  });
});
