/** The backoff runner in process: a due entry goes out through a healthy host. */
import { afterEach, describe, expect, it } from "vitest";
import { BackoffRunner } from "../../src/runners/backoff.js";
import { startSink, type Sink } from "../helpers/smtp-sink.js";
import { message } from "../helpers/site.js";
import { HostHealthStore } from "../../src/delivery/health.js";
import { LIST, makeRig, type Rig } from "./harness.js";

const HOUR = 3_600_000;

let rig: Rig | undefined;
let sink: Sink | undefined;
let down: Sink | undefined;
let runner: BackoffRunner | undefined;
afterEach(async () => {
  await runner?.close();
  await rig?.close();
  await sink?.close();
  await down?.close();
});

describe("BackoffRunner", () => {
  it("sends due entries through the healthy host, never the primary that is down", async () => {
    sink = await startSink();
    down = await startSink();
    await down.down();
    rig = await makeRig(
      "backoff",
      "smtp:\n" +
        `  hosts: [{ host: 127.0.0.1, port: ${down.port} }, { host: 127.0.0.1, port: ${sink.port} }]\n`,
      [{ address: LIST, members: ["bob@example.net"] }],
    );
    // the first host is known down, its next probe an hour away (outgoing would have recorded this)
    await new HostHealthStore(rig.settings.config.state, { probeMin: HOUR, probeMax: HOUR }).markFailure(
      `127.0.0.1:${down.port}`,
      "connection refused",
    );
    runner = new BackoffRunner(rig.ctx);
    const backoff = await rig.queue("backoff");
    // several entries, so that weighted routing would meet the down host were it not skipped
    const n = 8;
    for (let i = 0; i < n; i++)
      await backoff.enqueue(
        message({ id: `<b${i}@example.net>` }),
        {
          sender: "dev-bounces@example.org",
          recipients: ["bob@example.net"],
          list: LIST,
          kind: "post",
          attempts: 1,
          failures: [
            { at: Date.now() - 60_000, queue: "outgoing", kind: "temporary", message: "421 try later" },
          ],
        },
        { notBefore: Date.now() - 1000 },
      );
    // one pass, as the loop makes it: each entry handled once, then finished
    for (let i = 0; i < n; i++) {
      const entry = await rig.take("backoff");
      expect(await runner.handle(entry, rig.ctx.logger)).toBeUndefined();
      await backoff.finish(entry);
    }
    expect(sink.messages.map((m) => m.messageId).sort()).toEqual(
      Array.from({ length: n }, (_, i) => `<b${i}@example.net>`).sort(),
    );
    expect(await rig.queued("backoff")).toEqual([]);
    expect(await rig.queued("bounce")).toEqual([]);
  });

  it("schedules the next retry after a temporary failure, one attempt more", async () => {
    sink = await startSink({ faults: { rcpt: () => 451 } });
    rig = await makeRig("backoff", `smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port} }] }\n`, [
      { address: LIST, members: ["bob@example.net"] },
    ]);
    runner = new BackoffRunner(rig.ctx);
    const backoff = await rig.queue("backoff");
    const before = Date.now();
    await backoff.enqueue(message(), {
      sender: "dev-bounces@example.org",
      recipients: ["bob@example.net"],
      list: LIST,
      kind: "post",
      attempts: 1,
    });
    const entry = await rig.take("backoff");
    await runner.handle(entry, rig.ctx.logger);
    await backoff.finish(entry);
    const next = await rig.queued("backoff");
    expect(next).toHaveLength(1);
    expect(next[0]?.id).toBe(entry.id);
    expect(next[0]?.meta.attempts).toBe(2);
    expect(next[0]?.meta.failures.at(-1)?.code).toBe(451);
    // due by the schedule (its second step, minutes away), not now
    expect(next[0]?.time).toBeGreaterThan(before + 60_000);
    expect(sink.messages).toEqual([]);
  });
});
