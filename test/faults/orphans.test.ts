/**
 * The master is SIGKILLed while an outgoing worker is in the middle of an SMTP transaction, and a
 * fresh `qrunner start` follows at once (as an operator, or a supervisor without KillMode=control-group,
 * would do). The orphaned worker finishes its transaction; the new master's worker of the same slice
 * must not take that entry back meanwhile.
 * (A new master waits for the orphaned workers of the one that died before starting its own, so the
 * entry in the orphan's hands is finished by the orphan and delivered once.)
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { startSink, type Sink } from "../helpers/smtp-sink.js";
import {
  makeSite,
  message,
  requireBuild,
  runCli,
  spawnCli,
  waitFor,
  type Running,
  type Site,
} from "../helpers/site.js";

beforeAll(() => requireBuild());

let site: Site | undefined;
let sink: Sink | undefined;
const masters: Running[] = [];
afterEach(async () => {
  for (const m of masters.splice(0)) {
    if (m.child.exitCode !== null || m.child.signalCode !== null) continue;
    const gone = new Promise((r) => m.child.once("exit", r));
    m.child.kill("SIGTERM");
    await gone;
  }
  await sink?.close();
  sink = undefined;
  await site?.cleanup();
  site = undefined;
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("master killed mid-delivery, then started again at once", () => {
  it("delivers the message in flight once", async () => {
    sink = await startSink({ faults: { dataDelayMs: 10_000 } });
    site = await makeSite(`smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port} }] }\n`, [
      {
        address: "dev@example.org",
        members: ["m0@example.net", "m1@example.net"],
        extra: "archive: false\nnonmembers: accept",
      },
    ]);
    const first = spawnCli(["start", "-C", site.configFile]);
    masters.push(first);
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
      async () => sink!.connections > 0 && (await readdir(outgoing)).some((f) => f.endsWith(".wip")),
    );
    const worker = JSON.parse((await runCli(["status", "--json", "-C", site.configFile])).stdout) as {
      workers: { runner: string; pid: number }[];
    };
    const orphan = worker.workers.find((w) => w.runner === "outgoing")!.pid;

    // not `first.exited`: that waits for stdout to close, which the orphans hold open
    const gone = new Promise((r) => first.child.once("exit", r));
    first.child.kill("SIGKILL");
    await gone;
    const second = spawnCli(["start", "-C", site.configFile]);
    masters.push(second);
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
