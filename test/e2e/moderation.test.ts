/**
 * Nonmember posts and moderation end to end (issue 5): each `nonmembers` policy, and held posts
 * handled with `qrunner held`, `approve`, `reject` and `discard`, through the real runners and a
 * recording SMTP server on loopback. Robots (null sender, Auto-Submitted, bulk) never get a notice.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { requireBuild } from "../helpers/site.js";
import { headerValues, listSite, mail, noticeText, type ListSite } from "./lists-harness.js";

beforeAll(() => requireBuild());

let s: ListSite | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

interface HeldJson {
  id: string;
  list: string;
  sender: string;
  subject?: string;
  reason: string;
}

function policyList(
  name: string,
  policy: string,
): { address: string; owners: string[]; members: string[]; extra: string } {
  return {
    address: `${name}@example.org`,
    owners: [`${name}-boss@example.com`],
    members: ["alice@example.net"],
    extra: `nonmembers: ${policy}\nsubject_prefix: "[${name}] "`,
  };
}

describe("a nonmember's post", () => {
  it("follows the list's policy: accept, hold, reject with a notice, discard; robots are never answered", async () => {
    s = await listSite([
      policyList("acc", "accept"),
      policyList("hold", "hold"),
      policyList("rej", "reject"),
      policyList("disc", "discard"),
    ]);
    for (const list of ["acc", "hold", "rej", "disc"])
      await s.inject(
        mail({
          from: "mallory@example.com",
          to: `${list}@example.org`,
          subject: `to ${list}`,
          id: `<m-${list}@x>`,
        }),
        `${list}@example.org`,
      );
    // robots posting to the rejecting and holding lists: no notice may go back to them
    const robots = [
      {
        raw: mail({
          from: "trent@example.com",
          to: "rej@example.org",
          subject: "auto",
          id: "<r-1@x>",
          headers: ["Auto-Submitted: auto-generated"],
        }),
        from: undefined,
      },
      {
        raw: mail({
          from: "trudy@example.com",
          to: "rej@example.org",
          subject: "bulk",
          id: "<r-2@x>",
          headers: ["Precedence: bulk"],
        }),
        from: undefined,
      },
      {
        raw: mail({ from: "victor@example.com", to: "rej@example.org", subject: "null", id: "<r-3@x>" }),
        from: "<>",
      },
      {
        raw: mail({
          from: "MAILER-DAEMON@example.com",
          to: "rej@example.org",
          subject: "daemon",
          id: "<r-4@x>",
        }),
        from: undefined,
      },
      {
        raw: mail({
          from: "walter@example.com",
          to: "rej@example.org",
          subject: "list",
          id: "<r-5@x>",
          headers: ["List-Id: <other.example.com>"],
        }),
        from: undefined,
      },
      {
        raw: mail({
          from: "trent@example.com",
          to: "hold@example.org",
          subject: "auto",
          id: "<r-6@x>",
          headers: ["Auto-Submitted: auto-replied"],
        }),
        from: undefined,
      },
    ];
    for (const r of robots)
      await s.inject(
        r.raw,
        r.raw.toString().includes("To: hold@") ? "hold@example.org" : "rej@example.org",
        r.from,
      );
    await s.pump();

    // accept: distributed to the members with the list's headers
    const accepted = s.to("alice@example.net");
    expect(accepted.map((m) => m.messageId)).toEqual(["<m-acc@x>"]);
    expect(headerValues(accepted[0]!.raw, "list-id")).toEqual(["<acc.example.org>"]);
    expect(headerValues(accepted[0]!.raw, "subject")).toEqual(["[acc] to acc"]);

    // reject: one notice to the poster, in reply to the post, and nothing else to the poster
    const toMallory = s.to("mallory@example.com");
    expect(toMallory).toHaveLength(1);
    expect(toMallory[0]!.from).toBe("rej-bounces@example.org");
    expect(headerValues(toMallory[0]!.raw, "subject")).toEqual([
      "Your message to rej@example.org was rejected",
    ]);
    expect(headerValues(toMallory[0]!.raw, "in-reply-to")).toEqual(["<m-rej@x>"]);
    expect(noticeText(toMallory[0]!.raw)).toMatch(/only members may post/);

    // hold: kept, and the owners told (the held robot post too: owners are no robots)
    const held = JSON.parse((await s.cli(["held", "hold@example.org", "--json"])).stdout) as HeldJson[];
    expect(held.map((h) => h.subject).sort()).toEqual(["auto", "to hold"]);
    expect(s.to("hold-boss@example.com")).toHaveLength(2);

    // discard: nothing to anyone, and the other lists' owners hear nothing either
    for (const boss of ["acc-boss@example.com", "rej-boss@example.com", "disc-boss@example.com"])
      expect(s.to(boss)).toEqual([]);
    for (const robot of [
      "trent@example.com",
      "trudy@example.com",
      "victor@example.com",
      "MAILER-DAEMON@example.com",
      "walter@example.com",
    ])
      expect(s.to(robot), robot).toEqual([]);
    expect(s.sink.messages).toHaveLength(1 + 1 + 2);
    const checked = s.logs
      .filter((l) => l.msg === "post checked")
      .map((l) => `${String(l["list"])} ${String(l["action"])}`);
    expect(checked.sort()).toEqual(
      [
        "acc@example.org accept",
        "hold@example.org hold",
        "hold@example.org hold",
        "rej@example.org reject",
        "disc@example.org discard",
        // the null sender's post is dropped before the policy: it is a bounce or an auto-reply
        "rej@example.org discard",
        "rej@example.org reject",
        "rej@example.org reject",
        "rej@example.org reject",
        "rej@example.org reject",
      ].sort(),
    );
    // only the accepted post is archived
    expect(s.logs.filter((l) => l.msg === "archived")).toHaveLength(1);
  });
});

describe("moderation", () => {
  it("held posts: one owner notice each with its id; approve delivers, reject tells the poster, discard drops", async () => {
    s = await listSite([
      {
        address: "dev@example.org",
        owners: ["owner@example.org", "owner2@example.org"],
        members: ["alice@example.net", "bob@example.com"],
        extra: 'subject_prefix: "[dev] "\nnonmembers: hold',
      },
    ]);
    const posts = [
      mail({
        from: "Mallory <mallory@example.com>",
        to: "dev@example.org",
        subject: "one",
        id: "<h-1@x>",
        body: "first held post",
      }),
      mail({ from: "oscar@example.com", to: "dev@example.org", subject: "two", id: "<h-2@x>" }),
      mail({ from: "peggy@example.com", to: "dev@example.org", subject: "three", id: "<h-3@x>" }),
      mail({
        from: "robot@example.com",
        to: "dev@example.org",
        subject: "four",
        id: "<h-4@x>",
        headers: ["Auto-Submitted: auto-generated"],
      }),
    ];
    for (const p of posts) await s.inject(p, "dev@example.org");
    await s.pump();

    const held = JSON.parse((await s.cli(["held", "dev@example.org", "--json"])).stdout) as HeldJson[];
    expect(held.map((h) => h.subject).sort()).toEqual(["four", "one", "three", "two"]);
    const idOf = (subject: string): string => held.find((h) => h.subject === subject)!.id;
    const table = await s.cli(["held", "dev"]);
    expect(table.code).toBe(0);
    for (const h of held) expect(table.stdout).toContain(h.id);

    // each owner: exactly one notice per held post, naming its id
    for (const owner of ["owner@example.org", "owner2@example.org"]) {
      const notices = s.to(owner);
      expect(notices).toHaveLength(held.length);
      const named = notices.map((n) =>
        held.filter((h) => noticeText(n.raw).includes(`held id: ${h.id}`)).map((h) => h.id),
      );
      expect(named.every((ids) => ids.length === 1)).toBe(true);
      expect(named.flat().sort()).toEqual(held.map((h) => h.id).sort());
      for (const n of notices) {
        expect(n.from).toBe("dev-bounces@example.org");
        expect(noticeText(n.raw)).toMatch(/qrunner approve [0-9a-z]{10}/);
      }
    }
    // held posts reach nobody, and the posters are not told (yet)
    expect(s.sink.messages.filter((m) => !m.to.some((t) => t.startsWith("owner")))).toEqual([]);
    s.sink.clear();

    // approve: the post goes to the members, decorated as any other
    const approved = await s.cli(["approve", idOf("one")]);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(
      new RegExp(`^approved ${idOf("one")} \\(dev@example.org\\): queued [0-9a-f]{40} in incoming`),
    );
    await s.pump();
    expect(s.sink.deliveries()).toEqual(
      new Map([
        ["<h-1@x> alice@example.net", 1],
        ["<h-1@x> bob@example.com", 1],
      ]),
    );
    const delivered = s.sink.messages[0]!.raw;
    expect(headerValues(delivered, "subject")).toEqual(["[dev] one"]);
    expect(headerValues(delivered, "list-id")).toEqual(["<dev.example.org>"]);
    expect(delivered.toString()).toContain("\r\n\r\nfirst held post\r\n");
    s.sink.clear();

    // reject: the poster gets one notice with the reason; nothing else goes out
    const rejected = await s.cli(["reject", idOf("two"), "--reason=off topic for this list"]);
    expect(rejected.code, rejected.stderr).toBe(0);
    expect(rejected.stdout).toMatch(/notice to oscar@example.com queued/);
    await s.pump();
    expect(s.sink.messages.map((m) => m.to)).toEqual([["oscar@example.com"]]);
    const notice = s.sink.messages[0]!;
    expect(headerValues(notice.raw, "subject")).toEqual(["Your message to dev@example.org was rejected"]);
    expect(headerValues(notice.raw, "in-reply-to")).toEqual(["<h-2@x>"]);
    expect(noticeText(notice.raw)).toContain("Reason: off topic for this list");
    s.sink.clear();

    // discard: silent; rejecting the robot's post sends no notice (RFC 3834)
    expect((await s.cli(["discard", idOf("three")])).code).toBe(0);
    const robot = await s.cli(["reject", idOf("four")]);
    expect(robot.code).toBe(0);
    expect(robot.stdout).toMatch(/no notice: Auto-Submitted/);
    await s.pump();
    expect(s.sink.messages).toEqual([]);

    // all handled: nothing held, and a second approve of the same id finds nothing
    expect((await s.cli(["held", "dev@example.org"])).stdout).toMatch(/^no held posts/);
    const again = await s.cli(["approve", idOf("one")]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no held post with id/);
  });

  it("held posts expire after the list's hold_expires", async () => {
    s = await listSite([
      {
        address: "dev@example.org",
        owners: ["owner@example.org"],
        members: ["alice@example.net"],
        extra: "nonmembers: hold\nhold_expires: 1s",
      },
    ]);
    await s.inject(
      mail({ from: "mallory@example.com", to: "dev@example.org", subject: "stale", id: "<stale@x>" }),
      "dev@example.org",
    );
    await s.pump();
    const held = JSON.parse((await s.cli(["held", "--json"])).stdout) as HeldJson[];
    expect(held).toHaveLength(1);
    await sleep(1200);
    // the incoming runner expires held posts when it starts (and every ten minutes)
    const lines = await s.runOnce("incoming");
    expect(lines.find((l) => l.msg === "held posts expired")?.["expired"]).toEqual([held[0]!.id]);
    expect((await s.cli(["held", "--json"])).stdout.trim()).toBe("[]");
    expect((await s.cli(["approve", held[0]!.id])).code).toBe(1);
    expect(s.to("alice@example.net")).toEqual([]);
  });
});
