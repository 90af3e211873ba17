/** The archive runner in process: a post lands in its list's monthly mbox, once. */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ArchiveRunner } from "../../src/runners/archive.js";
import { message } from "../helpers/site.js";
import { LIST, makeRig, type Rig } from "./harness.js";

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const RECEIVED = Date.UTC(2026, 10, 28, 12, 0, 0);

async function archiveOnce(r: Rig, body: string): Promise<void> {
  await (
    await r.queue("archive")
  ).enqueue(message({ id: "<arch-1@example.net>", body }), {
    sender: "alice@example.net",
    recipients: [],
    list: LIST,
    kind: "post",
    received: RECEIVED,
  });
  await new ArchiveRunner(r.ctx).handle(await r.take("archive"), r.ctx.logger);
}

describe("ArchiveRunner", () => {
  it("appends a post to the list's mbox of the month it was received", async () => {
    rig = await makeRig("archive", "", [{ address: LIST, members: ["alice@example.net"] }]);
    await archiveOnce(rig, "From the archive's point of view\nthis line needs quoting.");
    const mbox = await readFile(
      path.join(rig.settings.config.state, "archives", LIST, "2026-11.mbox"),
      "latin1",
    );
    expect(mbox).toMatch(/^From alice@example\.net /);
    expect(mbox.match(/^Message-ID: <arch-1@example\.net>/gim)).toHaveLength(1);
    // mboxrd: a body line starting with "From " is quoted
    expect(mbox).toContain("\n>From the archive's point of view");
  });

  it("drops the post when archiving is off for the list", async () => {
    rig = await makeRig("archive", "", [
      { address: LIST, members: ["alice@example.net"], extra: "archive: false" },
    ]);
    await archiveOnce(rig, "not kept");
    await expect(
      readFile(path.join(rig.settings.config.state, "archives", LIST, "2026-11.mbox")),
    ).rejects.toThrow(/ENOENT/);
  });
});
