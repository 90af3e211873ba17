/** Reading queues for operators, filters and the qshape-like histogram, on real entry files in temp dirs. */
import { rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  describeFilter,
  domainMatches,
  domainOf,
  entryAge,
  hasFilter,
  matchesFilter,
  type EntryFilter,
} from "../../src/queue/filter.js";
import {
  HOLD_QUEUE,
  KNOWN_QUEUES,
  eachSummary,
  findEntries,
  hasEntries,
  listNames,
  listQueue,
  type EntrySummary,
} from "../../src/queue/inspect.js";
import { SHAPE_LABELS, ShapeCounter, bucketOf } from "../../src/queue/shape.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import type { NewEntryMeta } from "../../src/queue/types.js";
import { tempDir } from "../helpers/tmp.js";

const MIN = 60_000;
let root: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir: root, cleanup } = await tempDir("qrunner-inspect-"));
});
afterEach(async () => cleanup());

async function put(queue: string, meta: NewEntryMeta, opts: { notBefore?: number } = {}): Promise<string> {
  const sb = await Switchboard.open({ root, queue });
  return sb.enqueue(Buffer.from(`Subject: x\r\n\r\n${JSON.stringify(meta.recipients)}\r\n`), meta, opts);
}

async function all(queue: string): Promise<EntrySummary[]> {
  const out: EntrySummary[] = [];
  for await (const e of eachSummary(root, queue)) out.push(e);
  return out;
}

describe("inspect", () => {
  it("lists entries oldest first, queued and in progress, skipping temp files; reads only metadata", async () => {
    const now = Date.now();
    const a = await put(
      "outgoing",
      { sender: "s@x", recipients: ["a@example.net"] },
      { notBefore: now - 3000 },
    );
    const b = await put(
      "outgoing",
      { sender: "s@x", recipients: ["b@example.net"] },
      { notBefore: now - 2000 },
    );
    const c = await put(
      "outgoing",
      { sender: "s@x", recipients: ["c@example.net"] },
      { notBefore: now - 1000 },
    );
    const sb = await Switchboard.open({ root, queue: "outgoing" });
    const taken = await sb.dequeue();
    expect(taken?.id).toBe(a);
    await writeFile(path.join(root, "outgoing", `0000000001.000000+${"f".repeat(40)}.tmp`), "partial");

    const list = await listQueue(root, "outgoing");
    expect(list.map((e) => [e.id, e.state])).toEqual([
      [a, "in progress"],
      [b, "queued"],
      [c, "queued"],
    ]);
    expect(list[1]?.meta?.recipients).toEqual(["b@example.net"]);
    expect(list[1]?.size).toBeGreaterThan(0);
    expect((await listQueue(root, "outgoing", 2)).map((e) => e.id)).toEqual([a, b]);
    expect((await listNames(root, "outgoing")).length).toBe(3);
    expect((await all("outgoing")).map((e) => e.id)).toEqual([a, b, c]);
    expect(await listQueue(root, "nonesuch")).toEqual([]);
    expect(await hasEntries(root, "outgoing")).toBe(true);
    expect(await hasEntries(root, "bounce")).toBe(false);
  });

  it("walks a queue of many entries in order (read ahead in chunks)", async () => {
    const sb = await Switchboard.open({ root, queue: "backoff" });
    const t0 = Date.now();
    const ids = await sb.enqueueMany(
      Array.from({ length: 150 }, (_, i) => ({
        message: Buffer.from(`m${i}`),
        meta: { sender: "", recipients: [`u${i}@example.org`] },
        notBefore: t0 + i * 1000,
      })),
    );
    expect((await all("backoff")).map((e) => e.id)).toEqual(ids);
  });

  it("knows the hold queue (for operators only) and finds ids by prefix in it", async () => {
    expect(KNOWN_QUEUES).toContain(HOLD_QUEUE);
    expect(KNOWN_QUEUES).toContain("shunt");
    const id = await put(HOLD_QUEUE, {
      sender: "s@x",
      recipients: ["a@example.net"],
      extra: { heldFrom: "outgoing" },
    });
    const found = await findEntries(root, id.slice(0, 8));
    expect(found.map((e) => [e.queue, e.id])).toEqual([[HOLD_QUEUE, id]]);
    expect(await findEntries(root, id.slice(0, 8), ["outgoing"])).toEqual([]);
    expect(await findEntries(root, "abc")).toEqual([]); // under 6 digits: no guessing
  });

  it("reports an unreadable entry with the reason instead of failing", async () => {
    await Switchboard.open({ root, queue: "outgoing" });
    await writeFile(path.join(root, "outgoing", `1700000000.000000+${"a".repeat(40)}.qf`), "not an entry");
    const [e] = await listQueue(root, "outgoing");
    expect(e?.meta).toBeNull();
    expect(e?.error).toMatch(/not a qrunner entry/);
  });
});

describe("filters", () => {
  const now = 1_800_000_000_000;
  const entry = (meta: Partial<NewEntryMeta> | null, time = now): EntrySummary => ({
    queue: "outgoing",
    id: "a".repeat(40),
    name: "x",
    state: "queued",
    time,
    size: 1,
    meta:
      meta === null
        ? null
        : {
            version: 1,
            sender: "",
            recipients: [],
            received: now,
            attempts: 0,
            failures: [],
            recoveries: 0,
            ...meta,
          },
  });

  it("takes domains apart and matches exactly, or with subdomains after a leading dot", () => {
    expect(domainOf("Alice@Example.NET")).toBe("example.net");
    expect(domainOf("<bob@mail.example.org.>")).toBe("mail.example.org");
    expect(domainOf("postmaster")).toBe("");
    expect(domainMatches("example.org", "Example.org")).toBe(true);
    expect(domainMatches("mail.example.org", "example.org")).toBe(false);
    expect(domainMatches("mail.example.org", ".example.org")).toBe(true);
    expect(domainMatches("example.org", ".example.org")).toBe(true);
    expect(domainMatches("badexample.org", ".example.org")).toBe(false);
  });

  it("selects by list, domain, kind and age (since the message reached qrunner)", () => {
    const e = entry({
      list: "Dev@example.org",
      kind: "post",
      recipients: ["a@example.net", "b@mail.example.com"],
      received: now - 90 * MIN,
    });
    const yes: EntryFilter[] = [
      {},
      { list: "dev@EXAMPLE.org" },
      { domain: "example.net" },
      { domain: ".example.com" },
      { kind: "post" },
      { olderThanMs: 60 * MIN },
      { youngerThanMs: 2 * 60 * MIN },
      {
        list: "dev@example.org",
        domain: "example.net",
        kind: "post",
        olderThanMs: 89 * MIN,
        youngerThanMs: 91 * MIN,
      },
    ];
    const no: EntryFilter[] = [
      { list: "ops@example.org" },
      { domain: "example.com" },
      { kind: "notice" },
      { olderThanMs: 90 * MIN },
      { youngerThanMs: 90 * MIN },
      { domain: "example.net", kind: "notice" },
    ];
    for (const f of yes) expect({ f, match: matchesFilter(e, f, now) }).toEqual({ f, match: true });
    for (const f of no) expect({ f, match: matchesFilter(e, f, now) }).toEqual({ f, match: false });
    expect(hasFilter({})).toBe(false);
    expect(hasFilter({ kind: "post" })).toBe(true);
    expect(
      describeFilter({ list: "dev@example.org", olderThanMs: 3_600_000 }, (ms) => `${ms / 3_600_000}h`),
    ).toBe("list dev@example.org, older than 1h");
  });

  it("measures age from received, not from a deferred entry's due time", () => {
    const deferred = entry({ received: now - 10 * MIN }, now + 60 * MIN);
    expect(entryAge(deferred, now)).toBe(10 * MIN);
    expect(matchesFilter(deferred, { olderThanMs: 5 * MIN }, now)).toBe(true);
    // unreadable metadata: the file name's time, and no match on metadata filters
    const bad = entry(null, now - 30 * MIN);
    expect(entryAge(bad, now)).toBe(30 * MIN);
    expect(matchesFilter(bad, { olderThanMs: 20 * MIN }, now)).toBe(true);
    expect(matchesFilter(bad, { kind: "post" }, now)).toBe(false);
  });

  it("filters entries read from real files", async () => {
    const t = Date.now();
    await put("outgoing", {
      sender: "",
      recipients: ["a@example.net"],
      list: "dev@example.org",
      received: t - 2 * 3_600_000,
    });
    await put("outgoing", {
      sender: "",
      recipients: ["b@example.com"],
      list: "dev@example.org",
      received: t - 60_000,
    });
    await put("outgoing", {
      sender: "",
      recipients: ["c@example.net"],
      list: "ops@example.org",
      kind: "notice",
    });
    const pick = async (f: EntryFilter) =>
      (await all("outgoing"))
        .filter((e) => matchesFilter(e, f, Date.now()))
        .map((e) => e.meta?.recipients[0]);
    expect(await pick({ domain: "example.net" })).toEqual(["a@example.net", "c@example.net"]);
    expect(await pick({ list: "dev@example.org", olderThanMs: 3_600_000 })).toEqual(["a@example.net"]);
    expect(await pick({ youngerThanMs: 3_600_000, list: "dev@example.org" })).toEqual(["b@example.com"]);
    expect(await pick({ kind: "notice" })).toEqual(["c@example.net"]);
  });
});

describe("shape", () => {
  it("puts ages in qshape's buckets: 0-5, 5-10, 10-20 ... 640-1280 minutes, and older", () => {
    expect(SHAPE_LABELS).toEqual(["5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"]);
    const cases: [number, number][] = [
      [0, 0],
      [4.99, 0],
      [5, 1],
      [9.9, 1],
      [10, 2],
      [39, 3],
      [40, 4],
      [159, 5],
      [160, 6],
      [639, 7],
      [1279, 8],
      [1280, 9],
      [100_000, 9],
    ];
    for (const [min, b] of cases) expect({ min, b: bucketOf(min * MIN) }).toEqual({ min, b });
  });

  it("counts recipients (or entries) per domain and age from real entry files", async () => {
    const t = Date.now();
    const spec: [number, string[]][] = [
      [1, ["a@example.net", "b@example.net", "c@example.com"]],
      [7, ["d@example.net"]],
      [25, ["e@example.com", "f@example.com"]],
      [25, ["g@mail.example.org"]],
      [2000, ["h@example.net", "i@mail.example.org"]],
      [3, []],
    ];
    for (const [ageMin, rcpts] of spec)
      await put(
        "backoff",
        { sender: "", recipients: rcpts, received: t - ageMin * MIN - 1000 },
        { notBefore: t + 3_600_000 },
      );
    const now = Date.now();
    const rec = new ShapeCounter("backoff");
    const ent = new ShapeCounter("backoff", "entries");
    for (const e of await all("backoff")) {
      rec.add(e, now);
      ent.add(e, now);
    }
    const r = rec.result();
    expect(r.unit).toBe("recipients");
    expect(r.total).toEqual({ domain: "TOTAL", total: 9, counts: [3, 1, 0, 3, 0, 0, 0, 0, 0, 2] });
    expect(r.rows.map((x) => [x.domain, x.total, x.counts])).toEqual([
      ["example.net", 4, [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]],
      ["example.com", 3, [1, 0, 0, 2, 0, 0, 0, 0, 0, 0]],
      ["mail.example.org", 2, [0, 0, 0, 1, 0, 0, 0, 0, 0, 1]],
    ]);
    const e = ent.result(2);
    expect(e.total).toEqual({ domain: "TOTAL", total: 6, counts: [2, 1, 0, 2, 0, 0, 0, 0, 0, 1] });
    // an entry counts once per domain it has recipients in; one without recipients under (none)
    expect(e.rows.map((x) => [x.domain, x.total])).toEqual([
      ["example.net", 3],
      ["example.com", 2],
    ]);
    expect(e.domains).toBe(4);

    // a domain filter counts only that domain's recipients
    const only = new ShapeCounter("backoff", "recipients", { domain: "example.net" });
    for (const x of await all("backoff"))
      if (matchesFilter(x, { domain: "example.net" }, now)) only.add(x, now);
    expect(only.result().total.total).toBe(4);
    expect(only.result().rows.map((x) => x.domain)).toEqual(["example.net"]);
  });

  it("keeps entries in progress in the walk, and a .wip file stays where it is", async () => {
    const id = await put("outgoing", { sender: "", recipients: ["a@example.net"] });
    const [name] = await listNames(root, "outgoing");
    await rename(
      path.join(root, "outgoing", name!),
      path.join(root, "outgoing", name!.replace(/\.qf$/, ".wip")),
    );
    const [e] = await all("outgoing");
    expect([e?.id, e?.state]).toEqual([id, "in progress"]);
  });
});
