/**
 * GroupCommitter: the entries concurrent LMTP transactions store in one turn of the event loop are
 * committed as one batch (one directory fsync), each acknowledged with its own id, its bytes intact.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GroupCommitter } from "../../src/intake/group-commit.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";

let t: TempDir;
beforeEach(async () => {
  t = await tempDir("qrunner-group-");
});
afterEach(() => t.cleanup());

const meta = { sender: "alice@example.net", recipients: ["dev@example.org"] };

describe("GroupCommitter", () => {
  it("stores the entries of one turn with one directory fsync, each intact under its own id", async () => {
    const incoming = await Switchboard.open({ root: t.dir, queue: "incoming" });
    const gc = new GroupCommitter();
    const texts = Array.from({ length: 40 }, (_, i) => `message ${i}\r\n`.repeat(i + 1));
    const ids = await Promise.all(texts.map((x) => gc.enqueue(incoming, Buffer.from(x), meta)));
    expect(incoming.directoryFsyncs).toBe(1);
    expect(new Set(ids).size).toBe(40);
    const got = new Map<string, string>();
    for (let e = await incoming.dequeue(); e; e = await incoming.dequeue()) {
      got.set(e.id, e.message.toString());
      await incoming.finish(e);
    }
    expect(got).toEqual(new Map(ids.map((id, i) => [id, texts[i]])));
  });

  it("commits a later turn as a batch of its own, and each queue separately", async () => {
    const incoming = await Switchboard.open({ root: t.dir, queue: "incoming" });
    const command = await Switchboard.open({ root: t.dir, queue: "command" });
    const gc = new GroupCommitter();
    await Promise.all([1, 2, 3].map((i) => gc.enqueue(incoming, Buffer.from(`a${i}`), meta)));
    await Promise.all([
      ...[1, 2, 3].map((i) => gc.enqueue(incoming, Buffer.from(`b${i}`), meta)),
      gc.enqueue(command, Buffer.from("c"), meta),
    ]);
    expect(incoming.directoryFsyncs).toBe(2);
    expect(command.directoryFsyncs).toBe(1);
  });
});
