/** The outgoing runner in process against a real SMTP sink: delivered, bounced, or moved to backoff. */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OutgoingRunner } from "../../src/runners/outgoing.js";
import { startSink, type Sink } from "../helpers/smtp-sink.js";
import { message } from "../helpers/site.js";
import { LIST, makeRig, type Rig } from "./harness.js";

let rig: Rig | undefined;
let sink: Sink | undefined;
let runner: OutgoingRunner | undefined;
beforeEach(async () => {
  sink = await startSink();
  rig = await makeRig("outgoing", `smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port} }] }\n`, [
    { address: LIST, members: ["bob@example.net", "carol@example.net"] },
  ]);
  runner = new OutgoingRunner(rig.ctx);
});
afterEach(async () => {
  await runner?.close();
  await rig?.close();
  await sink?.close();
});

async function deliverOne(r: Rig, recipients: string[]): Promise<void> {
  await (
    await r.queue("outgoing")
  ).enqueue(message({ id: "<out-1@example.net>" }), {
    sender: "dev-bounces@example.org",
    recipients,
    list: LIST,
    kind: "post",
  });
  expect(await runner!.handle(await r.take("outgoing"), r.ctx.logger)).toBeUndefined();
}

describe("OutgoingRunner", () => {
  it("delivers an entry to its host", async () => {
    await deliverOne(rig!, ["bob@example.net", "carol@example.net"]);
    expect(sink!.messages).toHaveLength(1);
    expect(sink!.messages[0]?.from).toBe("dev-bounces@example.org");
    expect(sink!.messages[0]?.to.sort()).toEqual(["bob@example.net", "carol@example.net"]);
    expect(sink!.messages[0]?.messageId).toBe("<out-1@example.net>");
    expect(await rig!.queued("backoff")).toEqual([]);
    expect(await rig!.queued("bounce")).toEqual([]);
  });

  it("turns a 5xx for one recipient into a bounce event and delivers to the others", async () => {
    sink!.setFaults({ rcpt: (a) => (a === "carol@example.net" ? 550 : undefined) });
    await deliverOne(rig!, ["bob@example.net", "carol@example.net"]);
    expect(sink!.messages.flatMap((m) => m.to)).toEqual(["bob@example.net"]);
    const events = await rig!.queued("bounce");
    expect(events).toHaveLength(1);
    expect(events[0]?.meta.kind).toBe("bounce-event");
    expect(events[0]?.meta.list).toBe(LIST);
    const event = events[0]?.meta.extra?.["event"] as Record<string, unknown> | undefined;
    expect(event?.["recipient"]).toBe("carol@example.net");
    expect(event?.["kind"]).toBe("permanent");
    expect(await rig!.queued("backoff")).toEqual([]);
  });

  it("moves the entry to backoff when its host is down, with the failure recorded", async () => {
    await sink!.down();
    await deliverOne(rig!, ["bob@example.net", "carol@example.net"]);
    const waiting = await rig!.queued("backoff");
    expect(waiting).toHaveLength(1);
    expect(waiting[0]?.meta.recipients.sort()).toEqual(["bob@example.net", "carol@example.net"]);
    expect(waiting[0]?.meta.failures.at(-1)?.kind).toBe("temporary");
    expect(await rig!.queued("bounce")).toEqual([]);
    expect(sink!.messages).toEqual([]);
  });
});
