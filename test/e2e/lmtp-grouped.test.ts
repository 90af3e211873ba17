/**
 * One LMTP transaction to several recipients of several lists (issue 15): stored as one `incoming`
 * entry per list, and the real runners (`start --runner=NAME --once`) give every recipient its own
 * delivery: the post reaches each member once, the owner mail each owner once, the request its
 * command handling, and many VERP addresses of one list make one bounce entry, not one each.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { LmtpListener } from "../../src/intake/lmtp.js";
import { signedVerpAddress, VerpKeys } from "../../src/lists/verp.js";
import { loadAll } from "../../src/lists/load.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { silentLogger } from "../../src/util/log.js";
import { requireBuild } from "../helpers/site.js";
import { LmtpClient } from "../intake/lmtp-client.js";
import { listSite, mail, type ListSite } from "./lists-harness.js";

beforeAll(() => requireBuild());

let s: ListSite | undefined;
let listener: LmtpListener | undefined;
let client: LmtpClient | undefined;
afterEach(async () => {
  client?.close();
  await listener?.close();
  await s?.close();
  s = listener = client = undefined;
});

const DEV = {
  address: "dev@example.org",
  owners: ["owner@example.org", "owner2@example.org"],
  members: ["alice@example.net", "bob@example.com", "carol@example.net"],
  // signed VERP bounce addresses name members (unsigned ones are refused at RCPT)
  extra: "verp: true",
};
const OPS = {
  address: "ops@example.org",
  owners: ["boss@example.org"],
  members: ["alice@example.net", "dave@example.com"],
};

describe("one LMTP transaction to several lists and roles", () => {
  it("is stored once per list and every recipient gets its delivery, once", async () => {
    s = await listSite([DEV, OPS]);
    const settings = await loadAll(s.site.configFile);
    listener = await LmtpListener.start({
      listen: "127.0.0.1:0",
      settings: () => settings,
      logger: silentLogger(),
    });
    const c = (client = (await LmtpClient.connect(listener.address.port)).client);
    expect((await c.command("LHLO client.test")).code).toBe(250);
    expect((await c.command("MAIL FROM:<alice@example.net>")).code).toBe(250);
    const key = new VerpKeys().get(s.site.state);
    const dev = settings.lists.get(DEV.address)!;
    const verp = ["bob@example.com", "carol@example.net", "alice@example.net"].map((m) =>
      signedVerpAddress(dev, m, key, Date.now()),
    );
    const rcpts = [
      "dev@example.org",
      "dev-owner@example.org",
      ...verp,
      "ops@example.org",
      "ops-owner@example.org",
    ];
    for (const r of rcpts) expect((await c.command(`RCPT TO:<${r}>`)).code).toBe(250);
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(
      mail({ from: "alice@example.net", to: "dev@example.org", subject: "both lists", id: "<both@test>" }),
    );
    for (const _ of rcpts) expect((await c.next()).code).toBe(250);
    // an entry as inject (and LMTP before grouping) writes it: one recipient, `to`
    const incoming = await Switchboard.open({ root: s.site.qfiles, queue: "incoming" });
    await incoming.enqueue(
      mail({ from: "alice@example.net", to: "ops@example.org", subject: "old", id: "<old@test>" }),
      {
        sender: "alice@example.net",
        recipients: ["ops@example.org"],
        to: "ops@example.org",
        list: "ops@example.org",
        kind: "post",
      },
    );
    incoming.close();
    expect(await s.entries("incoming")).toHaveLength(3);

    await s.runOnce("incoming");
    expect(await s.entries("incoming")).toEqual([]);
    // three VERP addresses of different members: one bounce entry, naming no one member
    const bounces = await s.peek("bounce");
    expect(bounces).toHaveLength(1);
    expect(bounces[0]?.meta.extra?.["verpMember"]).toBeUndefined();
    expect(bounces[0]?.meta.list).toBe("dev@example.org");
    await s.pump();

    // (the bounce runner cannot read the post sent to -bounces as a bounce: it forwards it to the
    // owners from the null sender; those forwards are not deliveries of the post)
    const got = (rcpt: string, id: string): number =>
      s!.to(rcpt).filter((m) => m.from !== "" && m.raw.toString("latin1").includes(`Message-ID: ${id}`))
        .length;
    for (const m of DEV.members) expect(got(m, "<both@test>"), m).toBe(m === "alice@example.net" ? 2 : 1);
    for (const o of DEV.owners) expect(got(o, "<both@test>"), o).toBe(1);
    expect(got("dave@example.com", "<both@test>")).toBe(1);
    expect(got("boss@example.org", "<both@test>")).toBe(1);
    // alice is a member of both lists: one copy from each; the old-format entry is delivered too
    expect(got("dave@example.com", "<old@test>")).toBe(1);
    expect(got("alice@example.net", "<old@test>")).toBe(1);
    for (const o of DEV.owners)
      expect(s.to(o).filter((m) => m.from === "").length, `${o}: one unrecognised-bounce forward`).toBe(1);
    expect(await s.peek("shunt")).toEqual([]);
  });
});
