import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLAIM_STALE_MS, HeldStore, findHeld } from "../../src/lists/held.js";
import { heldIdFor, newHeldId, normalizeHeldId } from "../../src/lists/held-ids.js";
import { InvalidAddressError } from "../../src/lists/addresses.js";

let tmp: string;
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qrunner-held-"));
});
afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

// CRLF, a bare LF first, NUL and high bytes: kept exactly
const RAW = Buffer.concat([
  Buffer.from("\nFrom: Mallory <mallory@example.com>\r\nSubject: hi\r\n\r\nbody\r\n"),
  Buffer.from([0, 255, 10, 13]),
]);

describe("held ids", () => {
  it("are 10 characters of lowercase Crockford base32", () => {
    for (let i = 0; i < 100; i++) expect(newHeldId()).toMatch(/^[0-9abcdefghjkmnpqrstvwxyz]{10}$/);
  });

  it("accept capitals and the letters base32 leaves out", () => {
    expect(normalizeHeldId(" 7K2M9QX4AB ")).toBe("7k2m9qx4ab");
    expect(normalizeHeldId("OIL0000000")).toBe("0110000000");
    for (const bad of ["", "short", "../../../x", "7k2m9qx4ab/", "7k2m9qx4abc", "7k2m9qx4u!"])
      expect(normalizeHeldId(bad)).toBeNull();
  });
});

describe("HeldStore", () => {
  it("round-trips a post durably and exactly, in <state>/lists/<list>/held/", async () => {
    const store = new HeldStore(tmp, "Dev@Example.org");
    const id = await store.hold(
      RAW,
      {
        sender: "mallory@example.com",
        reason: "post from a non-member",
        from: "mallory@example.com",
        subject: "hi\r\nBcc: x",
      },
      5000,
    );
    const dir = path.join(tmp, "lists", "dev@example.org", "held");
    expect(await fsp.readdir(dir)).toEqual([`${id}.held`]);
    expect((await fsp.stat(path.join(dir, `${id}.held`))).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(dir)).mode & 0o777).toBe(0o700);

    const again = new HeldStore(tmp, "dev@example.org");
    const post = await again.get(id.toUpperCase());
    expect(post?.raw.equals(RAW)).toBe(true);
    expect(post?.meta).toEqual({
      version: 1,
      id,
      list: "Dev@Example.org",
      heldAt: 5000,
      size: RAW.length,
      sender: "mallory@example.com",
      reason: "post from a non-member",
      from: "mallory@example.com",
      subject: "hi\r\nBcc: x",
    });
    expect((await again.list()).map((m) => m.id)).toEqual([id]);
    expect(await again.remove(id)).toBe(true);
    expect(await again.remove(id)).toBe(false);
    expect(await again.get(id)).toBeNull();
    expect(await again.list()).toEqual([]);
  });

  it("lists oldest first and skips files that are not held posts", async () => {
    const store = new HeldStore(tmp, "dev@example.org");
    const b = await store.hold(RAW, { sender: "", reason: "r" }, 2000);
    const a = await store.hold(RAW, { sender: "", reason: "r" }, 1000);
    await fsp.writeFile(path.join(store.dir, "zzzzzzzzzz.held"), "garbage without a newline");
    await fsp.writeFile(path.join(store.dir, "notes.txt"), "hello\n");
    expect((await store.list()).map((m) => m.id)).toEqual([a, b]);
  });

  it("expires posts held longer than hold_expires", async () => {
    const store = new HeldStore(tmp, "dev@example.org");
    const old = await store.hold(RAW, { sender: "a@example.net", reason: "r" }, 1000);
    const young = await store.hold(RAW, { sender: "b@example.net", reason: "r" }, 9000);
    const gone = await store.expire(11_000, 10_000);
    expect(gone.map((m) => m.id)).toEqual([old]);
    expect((await store.list()).map((m) => m.id)).toEqual([young]);
    expect(await store.expire(11_000, 10_000)).toEqual([]);
  });

  it("lets exactly one of two concurrent claims win; release puts the post back", async () => {
    const store = new HeldStore(tmp, "dev@example.org");
    const id = await store.hold(RAW, { sender: "", reason: "r" });
    const [c1, c2] = await Promise.all([store.claim(id), new HeldStore(tmp, "dev@example.org").claim(id)]);
    const won = [c1, c2].filter((c) => c !== null);
    expect(won).toHaveLength(1);
    expect(won[0]?.raw.equals(RAW)).toBe(true);
    expect(await store.get(id)).toBeNull(); // claimed: not held meanwhile
    await won[0]?.release();
    const c3 = await store.claim(id);
    expect(c3).not.toBeNull();
    await c3?.done();
    expect(await fsp.readdir(store.dir)).toEqual([]);
    expect(await store.claim(id)).toBeNull();
  });

  it("returns a claim left by a crashed command to held once it is stale", async () => {
    const store = new HeldStore(tmp, "dev@example.org");
    const id = await store.hold(RAW, { sender: "", reason: "r" });
    const claimed = await store.claim(id);
    expect(claimed).not.toBeNull();
    expect(await store.list()).toEqual([]);
    expect(await store.list(Date.now() + CLAIM_STALE_MS + 1000)).toHaveLength(1);
    expect((await store.get(id))?.raw.equals(RAW)).toBe(true);
  });

  it("refuses a list address that would leave the state directory", () => {
    expect(() => new HeldStore(tmp, "../../etc@example.org")).toThrow(InvalidAddressError);
  });
});

describe("findHeld", () => {
  it("finds a post by id in whichever list holds it", async () => {
    expect(await findHeld(tmp, "7k2m9qx4ab")).toBeNull(); // no lists dir yet
    const dev = new HeldStore(tmp, "dev@example.org");
    const ann = new HeldStore(tmp, "announce@example.org");
    await dev.hold(RAW, { sender: "", reason: "r" });
    const id = await ann.hold(RAW, { sender: "x@example.net", reason: "too big" });
    await fsp.mkdir(path.join(tmp, "lists", "not-a-list"), { recursive: true });
    const f = await findHeld(tmp, id.toUpperCase());
    expect(f?.meta).toMatchObject({ id, list: "announce@example.org", reason: "too big" });
    expect(f?.store.dir).toBe(ann.dir);
    expect(await findHeld(tmp, "0000000000")).toBeNull();
    expect(await findHeld(tmp, "../../x")).toBeNull();
  });
});

describe("held ids derived from entries", () => {
  it("holds a re-run entry once: the same id finds the post already held", async () => {
    const store = new HeldStore(tmp, "dev@example.org");
    const entryId = "3f2a9c".padEnd(40, "0");
    const id = heldIdFor(entryId);
    expect(normalizeHeldId(id)).toBe(id);
    expect(heldIdFor(entryId)).toBe(id);
    expect(await store.hold(RAW, { sender: "a@example.net", reason: "nonmember" }, Date.now(), id)).toBe(id);
    expect(await store.hold(RAW, { sender: "a@example.net", reason: "nonmember" }, Date.now(), id)).toBe(id);
    expect((await store.list()).map((m) => m.id)).toEqual([id]);
  });
});
