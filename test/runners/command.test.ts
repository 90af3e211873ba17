/** The command runner in process: a join request creates a token, mails it, and replies. */
import { afterEach, describe, expect, it } from "vitest";
import { CommandRunner } from "../../src/runners/command.js";
import { ListStateStore } from "../../src/lists/state.js";
import { message } from "../helpers/site.js";
import { LIST, makeRig, type Rig } from "./harness.js";

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe("CommandRunner", () => {
  it("answers a subscribe with a confirmation token and a reply, and changes no membership yet", async () => {
    rig = await makeRig("command", "", [{ address: LIST, members: ["alice@example.net"] }]);
    const NEW = "newbie@example.net";
    await (
      await rig.queue("command")
    ).enqueue(
      message({
        from: NEW,
        to: "dev-request@example.org",
        subject: "",
        id: "<join-1@example.net>",
        body: "subscribe",
      }),
      {
        sender: NEW,
        recipients: ["dev-request@example.org"],
        to: "dev-request@example.org",
        list: LIST,
        kind: "request",
      },
    );
    await new CommandRunner(rig.ctx).handle(await rig.take("command"), rig.ctx.logger);

    const state = await new ListStateStore(rig.settings.config.state, LIST).read();
    const tokens = Object.entries(state.tokens);
    expect(tokens).toHaveLength(1);
    const [token, pending] = tokens[0]!;
    expect(pending).toMatchObject({ action: "join", address: NEW });
    expect(state.added).toEqual([]);

    // two messages to the sender: the reply to the request and the confirmation request with the token
    const out = await rig.queued("outgoing");
    expect(out).toHaveLength(2);
    for (const e of out) {
      expect(e.meta.recipients).toEqual([NEW]);
      expect(e.meta.kind).toBe("notice");
      expect(e.message.toString("latin1")).toMatch(/^In-Reply-To: <join-1@example\.net>/im);
    }
    expect(out.filter((e) => e.message.toString("latin1").includes(token))).toHaveLength(1);
  });
});
