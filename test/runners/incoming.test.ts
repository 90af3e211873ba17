/** The incoming runner in process: a post fans out to outgoing with the list headers, and to archive. */
import { afterEach, describe, expect, it } from "vitest";
import { IncomingRunner } from "../../src/runners/incoming.js";
import { message } from "../helpers/site.js";
import { LIST, makeRig, type Rig } from "./harness.js";

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const MEMBERS = ["alice@example.net", "bob@example.net", "carol@example.net"];

describe("IncomingRunner", () => {
  it("fans a member's post out to outgoing with the list headers, and queues it for the archive", async () => {
    rig = await makeRig("incoming", "smtp: { max_recipients: 2 }\n", [{ address: LIST, members: MEMBERS }]);
    const incoming = await rig.queue("incoming");
    await incoming.enqueue(message({ from: "alice@example.net", id: "<post-1@example.net>" }), {
      sender: "alice@example.net",
      recipients: [LIST],
      to: LIST,
    });
    const runner = new IncomingRunner(rig.ctx);
    const entry = await rig.take("incoming");
    expect(await runner.handle(entry, rig.ctx.logger)).toBeUndefined();

    const out = await rig.queued("outgoing");
    // three members, at most two per transaction: two entries that together reach each member once
    expect(out).toHaveLength(2);
    expect(out.flatMap((e) => e.meta.recipients).sort()).toEqual(MEMBERS);
    for (const e of out) {
      expect(e.meta.sender).toBe("dev-bounces@example.org");
      expect(e.meta.list).toBe(LIST);
      expect(e.meta.kind).toBe("post");
      const text = e.message.toString("latin1");
      expect(text).toMatch(/^List-Id: .*dev\.example\.org/im);
      expect(text).toMatch(/^List-Post: <mailto:dev@example\.org>/im);
      expect(text).toContain("<post-1@example.net>");
    }
    const archived = await rig.queued("archive");
    expect(archived).toHaveLength(1);
    expect(archived[0]?.meta.list).toBe(LIST);
  });

  it("routes mail to the -request address to the command queue", async () => {
    rig = await makeRig("incoming", "", [{ address: LIST, members: MEMBERS }]);
    const incoming = await rig.queue("incoming");
    const id = await incoming.enqueue(message({ to: "dev-request@example.org", body: "help" }), {
      sender: "zoe@example.net",
      recipients: ["dev-request@example.org"],
      to: "dev-request@example.org",
    });
    await new IncomingRunner(rig.ctx).handle(await rig.take("incoming"), rig.ctx.logger);
    const commands = await rig.queued("command");
    expect(commands.map((e) => [e.id, e.meta.list, e.meta.kind])).toEqual([[id, LIST, "request"]]);
    expect(await rig.queued("outgoing")).toEqual([]);
  });
});
