/**
 * The moderation service (src/lists/moderation.ts) on real files: a real held store and real
 * Switchboards under a temp dir. Each action's effect, and the results callers map to exit codes,
 * HTTP responses and mail replies.
 */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HeldStore } from "../../src/lists/held.js";
import { describeResult, moderate, type ModerationDeps } from "../../src/lists/moderation.js";
import { listSchema, type ListConfig } from "../../src/lists/schema.js";
import { decodeEntry } from "../../src/queue/entry.js";
import { Switchboard } from "../../src/queue/switchboard.js";

let tmp: string;
let deps: ModerationDeps;
let logged: { obj: object; msg: string }[];
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qrunner-moderation-"));
  logged = [];
  const qfiles = path.join(tmp, "qfiles");
  deps = {
    stateDir: path.join(tmp, "var"),
    queues: { get: (queue) => Switchboard.open({ root: qfiles, queue, spares: false }) },
    logger: { info: (obj, msg) => logged.push({ obj, msg }) },
  };
});
afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

const LIST: ListConfig = (() => {
  const parsed = listSchema.parse({ address: "dev@example.org", owners: ["owner@example.org"] });
  return { ...parsed, name: "dev", domain: "example.org", file: "/lists/dev.yaml", allMembers: [] };
})();

const POST = Buffer.from(
  "From: Mallory <mallory@example.com>\r\nSubject: buy now\r\nMessage-ID: <p1@x>\r\n\r\nspam\r\n",
);

async function hold(raw = POST, sender = "mallory@example.com"): Promise<string> {
  return new HeldStore(deps.stateDir, LIST.address).hold(raw, {
    sender,
    reason: "post from a non-member",
    from: "mallory@example.com",
    subject: "buy now",
    received: 1234,
  });
}

async function queued(queue: string): Promise<{ meta: Record<string, unknown>; message: Buffer }[]> {
  const dir = path.join(tmp, "qfiles", queue);
  const names = (await fsp.readdir(dir).catch(() => [])).filter((n) => n.endsWith(".qf"));
  return Promise.all(
    names.map(async (n) => decodeEntry(n, await fsp.readFile(path.join(dir, n)))),
  ) as Promise<{ meta: Record<string, unknown>; message: Buffer }[]>;
}

describe("moderate", () => {
  it("approve queues the post in incoming, marked approved and by whom, then drops it from held", async () => {
    const id = await hold();
    const r = await moderate(deps, LIST, id.toUpperCase(), { kind: "approve" }, "mod@example.org");
    expect(r).toMatchObject({ status: "done", action: "approve", id, list: "dev@example.org" });
    const [entry, ...more] = await queued("incoming");
    expect(more).toEqual([]);
    expect(entry?.message.equals(POST)).toBe(true);
    expect(entry?.meta).toMatchObject({
      sender: "mallory@example.com",
      recipients: ["dev@example.org"],
      list: "dev@example.org",
      kind: "post",
      received: 1234,
      extra: { approved: true, heldId: id, approvedBy: "mod@example.org" },
    });
    expect(r.status === "done" && r.queued).toMatch(/^[0-9a-f]{40}$/);
    expect(await new HeldStore(deps.stateDir, LIST.address).list()).toEqual([]);
    expect(logged).toEqual([
      {
        obj: expect.objectContaining({ held: id, action: "approve", by: "mod@example.org" }),
        msg: "held post approved",
      },
    ]);
    // a second action on the same post finds nothing
    expect(await moderate(deps, LIST, id, { kind: "discard" })).toEqual({ status: "not-found", id });
  });

  it("reject queues one notice to the poster with the reason, in reply to the post", async () => {
    const id = await hold();
    const r = await moderate(deps, LIST, id, { kind: "reject", reason: "off topic" });
    expect(r).toMatchObject({ status: "done", action: "reject", notice: { to: ["mallory@example.com"] } });
    const [n, ...more] = await queued("outgoing");
    expect(more).toEqual([]);
    expect(n?.meta).toMatchObject({
      recipients: ["mallory@example.com"],
      kind: "notice",
      list: "dev@example.org",
    });
    const text = n!.message.toString();
    expect(text).toContain("Reason: off topic");
    expect(text).toContain("In-Reply-To: <p1@x>");
    expect(await queued("incoming")).toEqual([]);
    expect(describeResult(r)).toMatch(
      /^rejected [0-9a-z]{10} \(dev@example.org\): notice to mallory@example.com queued [0-9a-f]{40} in outgoing$/,
    );
  });

  it("reject sends nothing to the null sender or a robot, and says why", async () => {
    const id = await hold(POST, "");
    const r = await moderate(deps, LIST, id, { kind: "reject" });
    expect(r).toMatchObject({ status: "done", noNotice: "null envelope sender" });
    expect(await queued("outgoing")).toEqual([]);
  });

  it("discard drops the post and queues nothing", async () => {
    const id = await hold();
    expect(await moderate(deps, LIST, id, { kind: "discard" })).toMatchObject({ status: "done" });
    expect(await queued("incoming")).toEqual([]);
    expect(await queued("outgoing")).toEqual([]);
    expect(await new HeldStore(deps.stateDir, LIST.address).list()).toEqual([]);
  });

  it("finds only the given list's posts: an id of another list is not found", async () => {
    const id = await hold();
    const other = { ...LIST, address: "other@example.org", name: "other" };
    expect(await moderate(deps, other, id, { kind: "approve" })).toEqual({ status: "not-found", id });
    expect(await moderate(deps, LIST, "../../x", { kind: "approve" })).toEqual({
      status: "not-found",
      id: "../../x",
    });
    expect(await new HeldStore(deps.stateDir, LIST.address).list()).toHaveLength(1);
  });

  it("a post another moderator has claimed is taken, and stays with them", async () => {
    const id = await hold();
    const claim = await new HeldStore(deps.stateDir, LIST.address).claim(id);
    expect(claim).not.toBeNull();
    expect(await moderate(deps, LIST, id, { kind: "approve" })).toEqual({
      status: "taken",
      id,
      list: "dev@example.org",
    });
    await claim!.release();
    // two at once: exactly one wins
    const [a, b] = await Promise.all([
      moderate(deps, LIST, id, { kind: "approve" }),
      moderate(deps, LIST, id, { kind: "discard" }),
    ]);
    // the loser finds it claimed (taken) or already gone (not-found), never done as well
    const statuses = [a.status, b.status];
    expect(statuses.filter((st) => st === "done")).toHaveLength(1);
    expect(statuses.filter((st) => st === "taken" || st === "not-found")).toHaveLength(1);
    expect(await queued("incoming")).toHaveLength(a.status === "done" ? 1 : 0);
    expect(await new HeldStore(deps.stateDir, LIST.address).list()).toEqual([]);
  });

  it("a list that no longer exists: only discard works", async () => {
    const id = await hold();
    expect(await moderate(deps, "dev@example.org", id, { kind: "approve" })).toEqual({
      status: "no-list",
      id,
      list: "dev@example.org",
    });
    expect(await moderate(deps, "dev@example.org", id, { kind: "discard" })).toMatchObject({
      status: "done",
    });
  });

  it("a queue that cannot be written: failed, temporary, and the post stays held", async () => {
    const id = await hold();
    // a file where the queue directory should be
    await fsp.mkdir(path.join(tmp, "qfiles"), { recursive: true });
    await fsp.writeFile(path.join(tmp, "qfiles", "incoming"), "");
    const r = await moderate(deps, LIST, id, { kind: "approve" });
    expect(r).toMatchObject({ status: "failed", id, temporary: true });
    expect((await new HeldStore(deps.stateDir, LIST.address).list()).map((m) => m.id)).toEqual([id]);
  });
});
