/** `queue.recycle`: the runner's Queues (and so every Switchboard a worker opens) use `.spare` or not. */
import { readdir } from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { SPARE_DIR } from "../../src/queue/spares.js";
import { Queues } from "../../src/runners/context.js";
import { tempDirEach } from "../helpers/tmp.js";

const tmp = tempDirEach();

const meta = { sender: "alice@example.net", recipients: ["dev@example.org"] };

/** Enqueue three entries to incoming, finish them, enqueue three to outgoing; what `.spare` holds. */
async function relay(recycle: boolean): Promise<{ spares: string[] | null; outgoing: number }> {
  const queues = new Queues(tmp.dir, pino({ level: "silent" }), recycle);
  try {
    const incoming = await queues.get("incoming");
    const outgoing = await queues.get("outgoing");
    for (let i = 0; i < 3; i++) await incoming.enqueue(Buffer.from(`post ${i}`), meta);
    for (let e = await incoming.dequeue(); e; e = await incoming.dequeue()) await incoming.finish(e);
    const parked = await readdir(path.join(tmp.dir, SPARE_DIR)).catch(() => null);
    for (let i = 0; i < 3; i++) await outgoing.enqueue(Buffer.from(`copy ${i}`), meta);
    return { spares: parked, outgoing: (await readdir(outgoing.dir)).length };
  } finally {
    await queues.close();
    await queues.close();
  }
}

describe("queue.recycle", () => {
  it("defaults to on", () => {
    expect(configSchema.parse({}).queue.recycle).toBe(true);
    expect(configSchema.parse({ queue: { recycle: false } }).queue.recycle).toBe(false);
    expect(() => configSchema.parse({ queue: { recycle: "auto" } })).toThrow();
  });

  it("on: finished entries are parked in .spare and taken back by the next enqueues", async () => {
    const got = await relay(true);
    expect(got.spares).toHaveLength(3);
    expect(got.outgoing).toBe(3);
    expect(await readdir(path.join(tmp.dir, SPARE_DIR))).toHaveLength(0);
  });

  it("off: no .spare directory is ever made; finished entries are unlinked", async () => {
    const got = await relay(false);
    expect(got.spares).toBeNull();
    expect(got.outgoing).toBe(3);
    expect(await readdir(tmp.dir)).not.toContain(SPARE_DIR);
    expect(await readdir(path.join(tmp.dir, "incoming"))).toHaveLength(0);
  });
});
