/**
 * The master is SIGKILLed while an outgoing worker is in the middle of an SMTP transaction, and a
 * fresh `qrunner start` follows at once (as an operator, or a supervisor without KillMode=control-group,
 * would do). The orphaned worker finishes its transaction; the new master's worker of the same slice
 * must not take that entry back meanwhile.
 * The fault suite found this duplicating mail (docs/reliability.md, "Issues these tests found", 3); since
 * the fix a new master waits for the workers its predecessor's status file names before it starts its
 * own (src/master/orphans.ts), so the orphan finishes the entry and each recipient gets it once. This
 * test guards that fix: a plain `it`, red if the new worker takes the entry back.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { testScope } from "../helpers/scope.js";
import { alive, message, runCli, stop, waitFor } from "../helpers/site.js";

const t = testScope();

describe("master killed mid-delivery, then started again at once", () => {
  it("delivers the message in flight once", async () => {
    const sink = await t.sink({ faults: { dataDelayMs: 10_000 } });
    const site = await t.site(`smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port} }] }\n`, [
      {
        address: "dev@example.org",
        members: ["m0@example.net", "m1@example.net"],
        extra: "archive: false\nnonmembers: accept",
      },
    ]);
    const first = t.spawn(["start", "-C", site.configFile]);
    await waitFor("all workers ready", () => first.stdout().includes('"msg":"all workers ready"'), 30_000);
    expect(
      (
        await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
          input: message({ id: "<orphan@x>" }),
        })
      ).code,
    ).toBe(0);
    const outgoing = path.join(site.qfiles, "outgoing");
    await waitFor(
      "the delivery to be in flight",
      async () => sink.connections > 0 && (await readdir(outgoing)).some((f) => f.endsWith(".wip")),
    );
    const worker = JSON.parse((await runCli(["status", "--json", "-C", site.configFile])).stdout) as {
      workers: { runner: string; pid: number }[];
    };
    const orphan = worker.workers.find((w) => w.runner === "outgoing")!.pid;

    await stop(first, "SIGKILL"); // waits for its exit, not for its stdout, which the orphans hold open
    const second = t.spawn(["start", "-C", site.configFile]);
    await waitFor("the new workers", () => second.stdout().includes('"msg":"all workers ready"'), 30_000);
    await waitFor("the orphan to finish", () => !alive(orphan), 30_000);
    // a second copy, if the new worker took the entry back, arrives within its own 10 s delay
    const until = Date.now() + 20_000;
    while (sink.deliveryCount() < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    await waitFor("the queue to drain", async () => (await readdir(outgoing)).length === 0, 30_000);
    expect(sink.deliveries().get("<orphan@x> m0@example.net")).toBe(1);
    expect(sink.deliveries().get("<orphan@x> m1@example.net")).toBe(1);
  }, 90_000);
});
