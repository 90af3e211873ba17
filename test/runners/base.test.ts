/** The runner loop in process: slices, concurrency, shunting, graceful stop, wake-ups, deferred entries. */
import { afterEach, describe, expect, it } from "vitest";
import type { Logger } from "pino";
import { RunnerLoop, type Handler, type LoopOptions } from "../../src/runners/base.js";
import { inSlice, makeSlice } from "../../src/queue/slice.js";
import type { Entry } from "../../src/queue/types.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { waitFor, message } from "../helpers/site.js";
import { gate, makeRig, type Rig } from "./harness.js";

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const HOUR = 3_600_000;

async function enqueueN(sb: Switchboard, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++)
    ids.push(
      await sb.enqueue(message({ subject: `m${i}` }), {
        sender: "a@example.net",
        recipients: ["b@example.net"],
      }),
    );
  return ids;
}

/** The loop a worker builds, over the rig's incoming queue seen through `slice`. */
async function loopFor(r: Rig, handler: Handler, opts: Partial<LoopOptions> = {}) {
  const queue = await r.queue("incoming");
  const shunt = await r.queue("shunt");
  return new RunnerLoop(r.ctx, queue, shunt, handler, { concurrency: 1, sleep: HOUR, once: true, ...opts });
}

describe("RunnerLoop", () => {
  it("handles every entry of its slice once, and only its slice", async () => {
    const slice = makeSlice(0, 2);
    rig = await makeRig("incoming", "", [], slice);
    const all = await enqueueN(await rig.queue("incoming"), 24);
    const mine = all.filter((id) => inSlice(slice, id));
    // both halves are populated, or the test says nothing
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.length).toBeLessThan(all.length);
    const seen: string[] = [];
    const sliced = await Switchboard.open({
      root: rig.settings.config.qfiles,
      queue: "incoming",
      slice,
    });
    const loop = new RunnerLoop(
      rig.ctx,
      sliced,
      await rig.queue("shunt"),
      {
        handle: async (e: Entry) => void seen.push(e.id),
      },
      { concurrency: 3, sleep: HOUR, once: true },
    );
    await loop.run();
    expect([...seen].sort()).toEqual([...mine].sort());
    expect(loop.stats.handled).toBe(mine.length);
    const left = (await rig.queued("incoming")).map((e) => e.id).sort();
    expect(left).toEqual(all.filter((id) => !inSlice(slice, id)).sort());
  });

  it("never has more than `concurrency` entries in hand, and fills up to it", async () => {
    rig = await makeRig("incoming");
    await enqueueN(await rig.queue("incoming"), 10);
    const N = 3;
    let inHand = 0;
    let most = 0;
    let done = 0;
    const waiting: (() => void)[] = [];
    const loop = await loopFor(
      rig,
      {
        handle: async () => {
          inHand++;
          most = Math.max(most, inHand);
          await new Promise<void>((r) => waiting.push(r));
          inHand--;
          done++;
        },
      },
      { concurrency: N },
    );
    const run = loop.run();
    // let the handlers go one at a time, each time once the loop has filled every slot it may
    while (done < 10) {
      const expected = Math.min(N, 10 - done);
      await waitFor(`${expected} entries in hand`, () => inHand >= expected && waiting.length > 0);
      const before = done;
      waiting.shift()?.();
      await waitFor("the released handler to finish", () => done > before);
    }
    await run;
    expect(most).toBe(N);
    expect(loop.stats.handled).toBe(10);
  });

  it("shunts the entry whose handler throws, with the reason, and goes on", async () => {
    rig = await makeRig("incoming");
    const ids = await enqueueN(await rig.queue("incoming"), 4);
    const bad = ids[2]!;
    const handled: string[] = [];
    const loop = await loopFor(rig, {
      handle: async (e: Entry) => {
        if (e.id === bad) throw new Error("cannot route this one");
        handled.push(e.id);
      },
    });
    await loop.run();
    expect(handled.sort()).toEqual(ids.filter((id) => id !== bad).sort());
    const shunted = await rig.queued("shunt");
    expect(shunted.map((e) => e.id)).toEqual([bad]);
    expect(shunted[0]?.meta.shuntedFrom).toBe("incoming");
    expect(shunted[0]?.meta.shuntReason).toContain("cannot route this one");
    expect(await rig.queued("incoming")).toEqual([]);
    expect(loop.stats.failed).toBe(1);
    expect(loop.stats.handled).toBe(3);
  });

  it("on stop, finishes the entry in hand, takes no other, and returns", async () => {
    rig = await makeRig("incoming");
    const ids = await enqueueN(await rig.queue("incoming"), 5);
    const hold = gate();
    const started: string[] = [];
    let finished = 0;
    const loop = await loopFor(
      rig,
      {
        handle: async (e: Entry) => {
          started.push(e.id);
          await hold.promise;
          finished++;
        },
      },
      { once: false },
    );
    let finishedAtExit = -1;
    const run = loop.run().then(() => (finishedAtExit = finished));
    await waitFor("an entry in hand", () => started.length === 1);
    rig.abort.abort();
    // let everything the stop sets off run (a loop that did not wait would have returned by now)
    await new Promise((r) => setImmediate(r));
    expect(finishedAtExit).toBe(-1);
    hold.open();
    await run;
    expect(finishedAtExit).toBe(1);
    expect(started).toHaveLength(1);
    // the finished entry is gone; the others wait, queued, for the next start
    const left = (await rig.queued("incoming")).map((e) => e.id).sort();
    expect(left).toEqual(ids.filter((id) => id !== started[0]).sort());
    expect((await rig.site.files("incoming")).filter((f) => f.endsWith(".wip"))).toEqual([]);
  });

  it("wakes on a new entry without waiting for the poll", async () => {
    rig = await makeRig("incoming");
    const queue = await rig.queue("incoming");
    // count the listings that came back empty: after the first, the loop is asleep (poll: an hour)
    let emptyListings = 0;
    const dequeue = queue.dequeue.bind(queue);
    queue.dequeue = async (now?: number) => {
      const e = await dequeue(now);
      if (e === null) emptyListings++;
      return e;
    };
    const seen: string[] = [];
    const loop = new RunnerLoop(
      rig.ctx,
      queue,
      await rig.queue("shunt"),
      {
        handle: async (e: Entry) => void seen.push(e.id),
      },
      { concurrency: 1, sleep: HOUR, once: false },
    );
    const run = loop.run();
    await waitFor("the loop to find its queue empty", () => emptyListings > 0);
    const id = await queue.enqueue(message(), { sender: "a@example.net", recipients: ["b@example.net"] });
    await waitFor("the new entry to be handled", () => seen.includes(id), 20_000);
    rig.abort.abort();
    await run;
  });

  it("does not take an entry before it is due", async () => {
    rig = await makeRig("incoming");
    const queue = await rig.queue("incoming");
    const meta = { sender: "a@example.net", recipients: ["b@example.net"] };
    const now = Date.now();
    const later = await queue.enqueue(message({ subject: "later" }), meta, { notBefore: now + HOUR });
    const soon = now + 1500;
    const soonId = await queue.enqueue(message({ subject: "soon" }), meta, { notBefore: soon });
    const dueId = await queue.enqueue(message({ subject: "due" }), meta);
    const seen = new Map<string, number>();
    const handler = { handle: async (e: Entry, _l: Logger) => void seen.set(e.id, Date.now()) };
    // once: only what is due now
    await (await loopFor(rig, handler)).run();
    expect([...seen.keys()]).toEqual([dueId]);
    // running on: the one due soon is taken when due (the poll is an hour away), the later one not
    const loop = await loopFor(rig, handler, { once: false });
    const run = loop.run();
    await waitFor("the entry due soon", () => seen.has(soonId), 20_000);
    rig.abort.abort();
    await run;
    expect(seen.get(soonId)).toBeGreaterThanOrEqual(soon);
    expect(seen.has(later)).toBe(false);
    expect((await rig.queued("incoming")).map((e) => e.id)).toEqual([later]);
  });
});
