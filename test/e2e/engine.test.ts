/**
 * The queue engine end to end, with real worker processes: inject's exit codes, four incoming
 * workers over four slices, crash recovery after SIGKILL, and poison entries.
 */
import { execFileSync } from "node:child_process";
import { mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Switchboard } from "../../src/queue/switchboard.js";
import { inSlice, makeSlice } from "../../src/queue/slice.js";
import { parseName } from "../../src/queue/names.js";
import { type Sink } from "../helpers/smtp-sink.js";
import { logLines, message, runCli, spawnCli, waitFor, type Site, runOnce } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";

const t = testScope();

const DEV = {
  address: "dev@example.org",
  members: ["bob@example.com"],
  extra: "archive: false\nnonmembers: accept",
};

describe("inject", () => {
  it("queues a message durably and exits 0; 65 for junk; 67 for an unknown address", async () => {
    const site = await t.site("", [DEV]);
    const ok = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], { input: message() });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^queued [0-9a-f]{40} in incoming/);
    const files = await site.files("incoming");
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{10}\.\d{6}\+[0-9a-f]{40}\.qf$/);

    const junk = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
      input: Buffer.from([0, 1, 2, 3, 255]),
    });
    expect(junk.code).toBe(65);
    const unknown = await runCli(["inject", "-C", site.configFile, "--to=nobody@example.org"], {
      input: message(),
    });
    expect(unknown.code).toBe(67);
    expect(unknown.stderr).toMatch(/no such list or address/);
    // the To header is used when --to is absent
    const byHeader = await runCli(["inject", "-C", site.configFile], {
      input: message({ to: "Dev List <dev-request@example.org>" }),
    });
    expect(byHeader.code).toBe(0);
    expect(byHeader.stdout).toMatch(/\(request\)/);
    expect(await site.files("incoming")).toHaveLength(2);
  });

  const asRoot = process.getuid?.() === 0;
  it.runIf(asRoot)("exits 75 and leaves nothing behind on a full or read-only queue directory", async () => {
    const site = await t.site("", [DEV]);
    const incoming = path.join(site.qfiles, "incoming");
    await mkdir(incoming, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", incoming]);
    try {
      const big = message({ body: "x".repeat(200_000) });
      const full = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], { input: big });
      expect(full.code).toBe(75);
      expect(await readdir(incoming)).toEqual([]);
      execFileSync("mount", ["-o", "remount,ro", incoming]);
      const ro = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
        input: message(),
      });
      expect(ro.code).toBe(75);
      expect(await readdir(incoming)).toEqual([]);
    } finally {
      execFileSync("umount", [incoming]);
    }
  });
});

describe("runners over slices", () => {
  it("four incoming workers --slice=K/4 --once handle each of 2,000 entries exactly once, each in its slice", async () => {
    const site = await t.site("", [DEV]);
    const incoming = await Switchboard.open({ root: site.qfiles, queue: "incoming" });
    const items = Array.from({ length: 2000 }, (_, i) => ({
      message: message({ subject: `post ${i}` }),
      meta: {
        sender: "alice@example.net",
        recipients: ["dev@example.org"],
        to: "dev@example.org",
        list: "dev@example.org",
        kind: "post",
      },
    }));
    const ids = new Set<string>();
    for (let i = 0; i < items.length; i += 500)
      for (const id of await incoming.enqueueMany(items.slice(i, i + 500))) ids.add(id);
    expect(ids.size).toBe(2000);

    const runs = [0, 1, 2, 3].map((k) =>
      spawnCli(["start", "-C", site.configFile, "--runner=incoming", `--slice=${k}/4`, "--once"]),
    );
    const handledBy = new Map<string, number>();
    for (const [k, r] of runs.entries()) {
      const { code } = await r.exited;
      expect(code, r.stderr()).toBe(0);
      const slice = makeSlice(k, 4);
      for (const line of logLines(r.stdout())) {
        if (line["msg"] !== "post accepted and fanned out") continue;
        const id = String(line["entry"]);
        expect(inSlice(slice, id)).toBe(true);
        expect(line["slice"]).toBe(`${k}/4`);
        expect(handledBy.has(id)).toBe(false);
        handledBy.set(id, k);
      }
    }
    expect(new Set(handledBy.keys())).toEqual(ids);
    expect(await site.files("incoming")).toEqual([]);
    // one outgoing entry per post (one member)
    expect((await site.files("outgoing")).filter((f) => f.endsWith(".qf"))).toHaveLength(2000);
  });
});

describe("crash recovery", () => {
  async function deliverySite(extra = ""): Promise<{ site: Site; sink: Sink }> {
    const sink = await t.sink();
    const site = await t.site(
      `smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port}, timeout: 60s }] }\nmaster: { recovery_limit: 2 }\n${extra}`,
      [DEV],
    );
    return { site, sink };
  }

  it("an entry in hand when its worker is SIGKILLed is recovered and delivered by the next start", async () => {
    const { site, sink } = await deliverySite();
    sink.setFaults({ dataDelayMs: 60_000 });
    const outgoing = await Switchboard.open({ root: site.qfiles, queue: "outgoing" });
    const msg = message({ id: "<crash-1@test.example>" });
    const id = await outgoing.enqueue(msg, {
      sender: "dev-bounces@example.org",
      recipients: ["bob@example.com"],
      list: "dev@example.org",
    });

    const w = spawnCli(["start", "-C", site.configFile, "--runner=outgoing", "--slice=0/1"]);
    await waitFor("the entry to be in progress", async () =>
      (await site.files("outgoing")).some((f) => f.endsWith(".wip")),
    );
    await waitFor("the SMTP session to start", () => sink.connections > 0);
    w.child.kill("SIGKILL");
    await w.exited;
    expect((await site.files("outgoing")).map((f) => parseName(f)?.ext)).toEqual(["wip"]);
    expect(sink.deliveries().size).toBe(0);

    sink.clearFaults();
    const again = await runOnce(site, "outgoing");
    expect(again.code, again.stderr).toBe(0);
    const recovered = logLines(again.stdout).find((l) => l["msg"] === "recovered in-progress entries");
    expect(recovered?.["recovered"]).toBe(1);
    expect(sink.deliveries().get("<crash-1@test.example> bob@example.com")).toBe(1);
    expect(await site.files("outgoing")).toEqual([]);
    expect(id).toMatch(/^[0-9a-f]{40}$/);
  });

  it("an entry that keeps crashing its worker ends in shunt after the recovery limit", async () => {
    const { site, sink } = await deliverySite();
    sink.setFaults({ dataDelayMs: 60_000 });
    const outgoing = await Switchboard.open({ root: site.qfiles, queue: "outgoing" });
    const id = await outgoing.enqueue(message({ id: "<poison@test.example>" }), {
      sender: "dev-bounces@example.org",
      recipients: ["bob@example.com"],
      list: "dev@example.org",
    });
    // recovery_limit 2: crash three times while handling it; the fourth start shunts it
    for (let crash = 0; crash < 3; crash++) {
      const before = sink.connections;
      const w = spawnCli(["start", "-C", site.configFile, "--runner=outgoing", "--slice=0/1"]);
      await waitFor(
        `crash ${crash}: the worker to take the entry`,
        async () =>
          sink.connections > before && (await site.files("outgoing")).some((f) => f.endsWith(".wip")),
      );
      w.child.kill("SIGKILL");
      await w.exited;
    }
    const last = await runOnce(site, "outgoing");
    expect(last.code, last.stderr).toBe(0);
    expect(await site.files("outgoing")).toEqual([]);
    const shunted = await runCli(["queue", "list", "shunt", "--json", "-C", site.configFile]);
    const entries = JSON.parse(shunted.stdout) as {
      id: string;
      meta: { shuntReason: string; shuntedFrom: string };
    }[];
    expect(entries.map((e) => e.id)).toEqual([id]);
    expect(entries[0]?.meta.shuntedFrom).toBe("outgoing");
    expect(entries[0]?.meta.shuntReason).toMatch(/poison/);

    // unshunt resets the count: the entry goes back and is delivered
    sink.clearFaults();
    expect((await runCli(["queue", "unshunt", "-C", site.configFile])).code).toBe(0);
    const after = await runOnce(site, "outgoing");
    expect(after.code, after.stderr).toBe(0);
    expect(sink.deliveries().get("<poison@test.example> bob@example.com")).toBe(1);
  });
});
