/** The bounce runner in process: a DSN scores the member it names; at the threshold, notices. */
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { BounceRunner } from "../../src/runners/bounce.js";
import { ListStateStore } from "../../src/lists/state.js";
import { REPO } from "../helpers/site.js";
import { LIST, makeRig, type Rig } from "./harness.js";

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** A Postfix DSN to dev-bounces@example.org: 5.1.1 for alice@example.net (and two non-members). */
const dsn = (): Promise<Buffer> => readFile(`${REPO}/test/fixtures/bounces/postfix-failed.eml`);

async function bounceOnce(r: Rig): Promise<void> {
  await (
    await r.queue("bounce")
  ).enqueue(await dsn(), {
    sender: "",
    recipients: ["dev-bounces@example.org"],
    to: "dev-bounces@example.org",
    list: LIST,
    kind: "bounces",
  });
  expect(await new BounceRunner(r.ctx).handle(await r.take("bounce"), r.ctx.logger)).toBeUndefined();
}

describe("BounceRunner", () => {
  it("scores the member a DSN names, and only members", async () => {
    rig = await makeRig("bounce", "", [{ address: LIST, members: ["alice@example.net", "bob@example.net"] }]);
    await bounceOnce(rig);
    const state = await new ListStateStore(rig.settings.config.state, LIST).read();
    expect(state.members["alice@example.net"]?.score).toBeGreaterThan(0);
    expect(state.members["alice@example.net"]?.disabled).toBeUndefined();
    expect(Object.keys(state.members)).toEqual(["alice@example.net"]);
    // below the threshold: nobody is told anything
    expect(await rig.queued("outgoing")).toEqual([]);
  });

  it("disables the member at the list's threshold and tells the member and the owners", async () => {
    rig = await makeRig("bounce", "", [
      { address: LIST, members: ["alice@example.net"], extra: "bounce: { threshold: 1 }" },
    ]);
    await bounceOnce(rig);
    const state = await new ListStateStore(rig.settings.config.state, LIST).read();
    expect(state.members["alice@example.net"]?.disabled).toBeDefined();
    const notices = await rig.queued("outgoing");
    expect(notices.map((e) => e.meta.recipients).sort()).toEqual([
      ["alice@example.net"],
      ["owner@example.org"],
    ]);
    expect(notices.every((e) => e.meta.kind === "notice")).toBe(true);
  });

  /** A refusal outgoing got at delivery, as it queues it (delivery-step.ts bounceEvents). */
  async function refusedOnce(r: Rig, recipient: string, message: string): Promise<void> {
    await (
      await r.queue("bounce")
    ).enqueue(Buffer.alloc(0), {
      sender: "",
      recipients: [recipient],
      list: LIST,
      kind: "bounce-event",
      extra: {
        event: { recipient, kind: "permanent", message, code: 550, sender: "dev-bounces@example.org" },
      },
    });
    expect(await new BounceRunner(r.ctx).handle(await r.take("bounce"), r.ctx.logger)).toBeUndefined();
  }

  it("scores a refusal at delivery by its words: a spam refusal is soft, an unknown user or unspecific 5xx hard", async () => {
    rig = await makeRig("bounce", "", [
      {
        address: LIST,
        members: ["alice@example.net", "bob@example.net", "carol@example.net"],
        extra: "bounce: { threshold: 1 }",
      },
    ]);
    await refusedOnce(rig, "alice@example.net", "550 5.7.1 Message rejected as spam by Content Filtering");
    await refusedOnce(
      rig,
      "bob@example.net",
      "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown",
    );
    await refusedOnce(rig, "carol@example.net", "550 permanent failure for carol@example.net");
    const members = (await new ListStateStore(rig.settings.config.state, LIST).read()).members;
    expect(members["alice@example.net"]?.score).toBe(0.5);
    expect(members["alice@example.net"]?.disabled).toBeUndefined();
    expect(members["bob@example.net"]?.disabled).toBeDefined();
    expect(members["carol@example.net"]?.disabled).toBeDefined();
  });
});
