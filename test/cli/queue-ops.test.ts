/**
 * `qrunner queue requeue|hold|release|delete` and the `queue list` filters and shape, as real
 * `node bin/qrunner` processes over real queue files (build first: npx tsc -p tsconfig.build.json).
 */
import { readFile, readdir, rename } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseName } from "../../src/queue/names.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import type { EntryMeta, NewEntryMeta } from "../../src/queue/types.js";
import { makeSite, requireBuild, runCli, type Site } from "../helpers/site.js";

const MIN = 60_000;
let site: Site;

beforeAll(() => requireBuild());
beforeEach(async () => {
  site = await makeSite();
});
afterEach(async () => site.cleanup());

const q = (...args: string[]) => runCli(["queue", ...args, "-C", site.configFile]);

async function put(queue: string, meta: NewEntryMeta, notBefore?: number, body = "hello"): Promise<string> {
  const sb = await Switchboard.open({ root: site.qfiles, queue });
  // 8-bit bytes, a NUL and bare LF: nothing may be re-encoded on the way
  const msg = Buffer.concat([Buffer.from(`Subject: t\r\nX: caf\xe9\n\r\n${body}\0\r\n`, "latin1")]);
  return sb.enqueue(msg, meta, notBefore !== undefined ? { notBefore } : {});
}

/** file name -> bytes of every file in a queue directory */
async function snapshot(queue: string): Promise<Map<string, Buffer>> {
  const dir = path.join(site.qfiles, queue);
  const names = await readdir(dir).catch(() => [] as string[]);
  return new Map(
    await Promise.all(names.map(async (n) => [n, await readFile(path.join(dir, n))] as [string, Buffer])),
  );
}

async function entries(queue: string): Promise<{ id: string; time: number; meta: EntryMeta }[]> {
  const r = await q("list", queue, "--json");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { id: string; time: number; meta: EntryMeta }[];
}

/** Take an entry in progress the way a runner does (.qf -> .wip). */
async function makeWip(queue: string, id: string): Promise<string> {
  const dir = path.join(site.qfiles, queue);
  const name = (await readdir(dir)).find((n) => n.includes(id) && n.endsWith(".qf"))!;
  const wip = name.replace(/\.qf$/, ".wip");
  await rename(path.join(dir, name), path.join(dir, wip));
  return wip;
}

describe("queue list filters and shape", () => {
  it("filters by list, domain, age and kind; keeps --json as before", async () => {
    const t = Date.now();
    const a = await put("outgoing", {
      sender: "",
      recipients: ["a@example.net"],
      list: "dev@example.org",
      kind: "post",
      received: t - 3 * 3_600_000,
    });
    const b = await put("outgoing", {
      sender: "",
      recipients: ["b@mail.example.com"],
      list: "dev@example.org",
      kind: "post",
      received: t - 10 * MIN,
    });
    const c = await put(
      "backoff",
      {
        sender: "",
        recipients: ["c@example.net", "d@example.com"],
        list: "ops@example.org",
        kind: "notice",
        received: t - 50 * MIN,
      },
      t + 3_600_000,
    );
    const ids = async (...args: string[]) => {
      const r = await q("list", ...args, "--json");
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { id: string }[]).map((e) => e.id).sort();
    };
    expect(await ids()).toEqual([a, b, c].sort());
    expect(await ids("--domain", "example.net")).toEqual([a, c].sort());
    expect(await ids("--domain", ".example.com")).toEqual([b, c].sort());
    expect(await ids("outgoing", "--list", "dev@example.org", "--older-than", "1h")).toEqual([a]);
    expect(await ids("--younger-than", "1h")).toEqual([b, c].sort());
    expect(await ids("--older-than", "20m", "--younger-than", "2h")).toEqual([c]);
    expect(await ids("--kind", "notice")).toEqual([c]);
    expect(await ids("--kind", "notice", "--domain", "example.org")).toEqual([]);

    const text = await q("list", "--domain", "example.net");
    expect(text.stdout).toMatch(/ID\s+QUEUE\s+STATE\s+AGE/);
    expect(text.stdout).toMatch(/due in/); // the deferred backoff entry
    expect(text.stdout).toMatch(/2 entries\n$/);
    expect((await q("list", "--older-than", "soon")).code).toBe(64);
    expect((await q("list", "nonesuch")).code).toBe(64);
  });

  it("prints a qshape-like table per queue, recipients or entries, within 80 columns", async () => {
    const t = Date.now();
    for (let i = 0; i < 12; i++)
      await put("outgoing", {
        sender: "",
        recipients: [
          `u${i}@example.net`,
          `v${i}@example.com`,
          `w${i}@a-very-long-subdomain-name.of.some.example.org`,
        ],
        received: t - (i * 30 + 1) * MIN,
      });
    await put("backoff", { sender: "", recipients: ["x@example.net"], received: t - 2 * MIN }, t + MIN);

    const r = await q("list", "outgoing", "--shape");
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^outgoing: recipients by domain/);
    expect(lines[1]).toMatch(/\bT\s+5\s+10\s+20\s+40\s+80\s+160\s+320\s+640\s+1280\s+1280\+$/);
    // 12 entries at 1, 31, 61, ... 331 minutes: 0-5: 1; 20-40: 1; 40-80: 1; 80-160: 3; 160-320: 5; 320-640: 1
    expect(lines[2]).toMatch(/^\s*TOTAL\s+36\s+3\s+0\s+0\s+3\s+3\s+9\s+15\s+3\s+0\s+0$/);
    expect(lines.find((l) => /^\s*example\.net /.test(l))).toMatch(
      /example\.net\s+12\s+1\s+0\s+0\s+1\s+1\s+3\s+5\s+1\s+0\s+0$/,
    );
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);

    const top1 = await q("list", "outgoing", "--shape", "--top", "1", "--count", "entries");
    expect(top1.stdout).toMatch(/^outgoing: entries by domain/);
    expect(top1.stdout).toMatch(/TOTAL\s+12\s/);
    expect(top1.stdout).toMatch(/\(2 more domains; --top to see them\)/);

    const json = JSON.parse((await q("list", "--shape", "--json", "--domain", "example.net")).stdout) as {
      queue: string;
      unit: string;
      total: { total: number };
      rows: { domain: string }[];
    }[];
    expect(json.map((s) => [s.queue, s.unit, s.total.total, s.rows.map((x) => x.domain)])).toEqual([
      ["outgoing", "recipients", 12, ["example.net"]],
      ["backoff", "recipients", 1, ["example.net"]],
    ]);
    expect((await q("list", "--shape", "--count", "bytes")).code).toBe(64);
  });
});

describe("queue requeue", () => {
  it("makes a deferred entry due now, by id prefix: same id, same bytes, durable", async () => {
    const t = Date.now();
    const id = await put(
      "backoff",
      { sender: "", recipients: ["a@example.net"], attempts: 2 },
      t + 3_600_000,
    );
    const other = await put("backoff", { sender: "", recipients: ["b@example.net"] }, t + 3_600_000);
    const before = (await q("show", id, "--raw")).stdout;

    const r = await q("requeue", id.slice(0, 8));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${id} backoff: due now \\(was due in`));
    expect(r.stdout).toMatch(/requeued 1 entry\n$/);

    const after = await entries("backoff");
    const e = after.find((x) => x.id === id)!;
    expect(e.time).toBeLessThanOrEqual(Date.now());
    expect(e.meta.deliverAfter).toBeLessThanOrEqual(Date.now());
    expect(e.meta.attempts).toBe(2);
    expect(after.find((x) => x.id === other)!.time).toBeGreaterThan(Date.now());
    expect((await q("show", id, "--raw")).stdout).toBe(before);
    // exactly one file per entry: the original went only after its successor was written
    const files = [...(await snapshot("backoff")).keys()];
    expect(files.filter((f) => f.includes(id))).toHaveLength(1);
    expect(files.every((f) => f.endsWith(".qf"))).toBe(true);

    // again: it is due now, so there is nothing to do
    const again = await q("requeue", id);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to requeue: 1 entry already due/);
  });

  it("requeues by filter, leaves entries in progress alone, and refuses to guess", async () => {
    const t = Date.now();
    const net = [];
    for (let i = 0; i < 5; i++)
      net.push(
        await put("backoff", { sender: "", recipients: [`a${i}@example.net`] }, t + (i + 1) * 3_600_000),
      );
    const com = await put("backoff", { sender: "", recipients: ["b@example.com"] }, t + 3_600_000);
    const busy = await put("backoff", { sender: "", recipients: ["c@example.net"] }, t + 3_600_000);
    const wip = await makeWip("backoff", busy);
    const wipBytes = await readFile(path.join(site.qfiles, "backoff", wip));

    const dry = await q("requeue", "--queue", "backoff", "--domain", "example.net", "--dry-run");
    expect(dry.stdout).toMatch(/would have requeued 5 entries; 1 entry in progress, not touched/);

    const r = await q("requeue", "--queue", "backoff", "--domain", "example.net");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/requeued 5 entries; 1 entry in progress, not touched\n$/);
    expect(r.stderr).toContain(`${busy} (backoff) is in progress`);
    const now = Date.now();
    for (const e of await entries("backoff")) {
      if (net.includes(e.id)) expect(e.time).toBeLessThanOrEqual(now);
      if (e.id === com) expect(e.time).toBeGreaterThan(now);
    }
    // the .wip file is exactly as it was
    expect(await readFile(path.join(site.qfiles, "backoff", wip))).toEqual(wipBytes);

    // an id in progress is reported and fails the command
    const named = await q("requeue", busy.slice(0, 10));
    expect(named.code).toBe(1);
    expect(named.stderr).toMatch(/in progress/);

    expect((await q("requeue")).code).toBe(64); // nothing selected: say what
    expect((await q("requeue", "--queue", "hold")).stderr).toMatch(/release/);
    const missing = await q("requeue", "abcdef0123");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no entry with id abcdef0123/);
  });
});

describe("queue hold and release", () => {
  it("holds by filter with the origin noted, and release gives back the same files byte for byte", async () => {
    const t = Date.now();
    const kept = await put("outgoing", {
      sender: "",
      recipients: ["k@example.com"],
      list: "dev@example.org",
    });
    await put("outgoing", {
      sender: "",
      recipients: ["a@example.net"],
      list: "dev@example.org",
      extra: { approved: true },
    });
    await put("outgoing", { sender: "", recipients: ["b@example.net"], list: "dev@example.org" }); // no extra at all
    await put("backoff", { sender: "", recipients: ["c@example.net"], extra: {} }, t + 3_600_000, "deferred");
    const busy = await put("outgoing", { sender: "", recipients: ["d@example.net"] });
    const wip = await makeWip("outgoing", busy);
    const before = { outgoing: await snapshot("outgoing"), backoff: await snapshot("backoff") };

    const held = await q("hold", "--domain", "example.net");
    expect(held.code, held.stderr).toBe(0);
    expect(held.stdout).toMatch(/held 3 entries; 1 entry in progress, not touched\n$/);
    expect(held.stdout).toMatch(/ outgoing -> hold\n/);
    expect(held.stdout).toMatch(/ backoff -> hold\n/);

    const inHold = await entries("hold");
    expect(inHold).toHaveLength(3);
    for (const e of inHold) {
      expect(e.meta.extra?.["heldFrom"]).toMatch(/^(outgoing|backoff)$/);
      expect(typeof e.meta.extra?.["heldAt"]).toBe("number");
    }
    expect([...(await snapshot("outgoing")).keys()].sort()).toEqual(
      [...before.outgoing.keys()].filter((n) => n.includes(kept) || n === wip).sort(),
    );
    expect((await q("list", "hold")).stdout).toMatch(/held from outgoing/);
    // held entries are not requeued (release them)
    expect((await q("requeue", "--queue", "hold")).code).toBe(64);
    const named = await q("requeue", inHold[0]!.id);
    expect(named.code).toBe(1);
    expect(named.stderr).toMatch(/the entry is in hold; this command applies to incoming, outgoing/);

    const rel = await q("release");
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout).toMatch(/released 3 entries\n$/);
    expect((await snapshot("hold")).size).toBe(0);
    // the same names and the same bytes as before the hold: metadata restored exactly, message untouched
    expect(await snapshot("outgoing")).toEqual(before.outgoing);
    expect(await snapshot("backoff")).toEqual(before.backoff);
  });

  it("holds and releases single ids, and leaves an entry without a recorded origin in hold", async () => {
    const a = await put("outgoing", { sender: "", recipients: ["a@example.net"] });
    const b = await put("command", {
      sender: "x@example.net",
      recipients: ["dev-request@example.org"],
      kind: "request",
    });
    const r = await q("hold", a.slice(0, 7), b.slice(0, 7));
    expect(r.code, r.stderr).toBe(0);
    expect((await entries("hold")).map((e) => e.id).sort()).toEqual([a, b].sort());
    // release with a filter: only the command
    const one = await q("release", "--kind", "request");
    expect(one.stdout).toMatch(/released 1 entry\n$/);
    expect((await entries("command")).map((e) => e.id)).toEqual([b]);
    expect((await entries("hold")).map((e) => e.id)).toEqual([a]);

    const orphan = await put("hold", { sender: "", recipients: ["o@example.net"] });
    const rel = await q("release", orphan);
    expect(rel.code).toBe(1);
    expect(rel.stderr).toMatch(/no origin queue recorded/);
    expect((await entries("hold")).map((e) => e.id).sort()).toEqual([a, orphan].sort());
  });
});

describe("queue delete", () => {
  it("refuses without --yes when stdin is not a terminal, and deletes nothing", async () => {
    const a = await put("shunt", {
      sender: "",
      recipients: ["a@example.net"],
      shuntedFrom: "outgoing",
      shuntReason: "boom",
    });
    const before = await snapshot("shunt");
    const r = await q("delete", a);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(
      /refusing to delete 1 entry without confirmation: stdin is not a terminal; add --yes/,
    );
    expect(await snapshot("shunt")).toEqual(before);
  });

  it("deletes by id and by filter with --yes, never an entry in progress", async () => {
    const t = Date.now();
    const old = [];
    for (let i = 0; i < 3; i++)
      old.push(
        await put("shunt", { sender: "", recipients: [`a${i}@example.net`], received: t - 8 * 86_400_000 }),
      );
    const young = await put("shunt", { sender: "", recipients: ["y@example.net"] });
    const busy = await put("outgoing", {
      sender: "",
      recipients: ["z@example.net"],
      received: t - 8 * 86_400_000,
    });
    const wip = await makeWip("outgoing", busy);
    const single = await put("backoff", { sender: "", recipients: ["s@example.org"] }, t + MIN);

    const r = await q("delete", "--older-than", "7d", "--yes");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/deleted 3 entries; 1 entry in progress, not touched\n$/);
    expect((await entries("shunt")).map((e) => e.id)).toEqual([young]);
    expect([...(await snapshot("outgoing")).keys()]).toEqual([wip]);

    const one = await q("delete", single.slice(0, 9), "-y");
    expect(one.code).toBe(0);
    expect(one.stdout).toBe(`${single} backoff: deleted\ndeleted 1 entry\n`);
    expect((await snapshot("backoff")).size).toBe(0);
    expect((await q("delete", "--queue", "bad", "--yes")).code).toBe(64);
  });

  it("works through many entries in chunks and reports them all", async () => {
    const sb = await Switchboard.open({ root: site.qfiles, queue: "backoff" });
    const t = Date.now();
    const n = 600; // more than two chunks of 256
    await sb.enqueueMany(
      Array.from({ length: n }, (_, i) => ({
        message: Buffer.from(`m${i}`),
        meta: { sender: "", recipients: [`u${i}@example.net`] },
        notBefore: t + 3_600_000 + i,
      })),
    );
    const hold = await q("hold", "--queue", "backoff", "--quiet");
    expect(hold.code, hold.stderr).toBe(0);
    expect(hold.stdout).toBe(`held ${n} entries\n`);
    const names = [...(await snapshot("hold")).keys()];
    expect(names).toHaveLength(n);
    expect(names.every((x) => parseName(x)?.ext === "qf")).toBe(true);
    const rel = await q("release");
    expect(rel.stdout.split("\n").filter((l) => l.endsWith(" hold -> backoff"))).toHaveLength(n);
    expect((await snapshot("backoff")).size).toBe(n);
  });
});
