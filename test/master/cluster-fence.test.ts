/**
 * A cluster node's worker works only while its master keeps its lease deadline in the future: a real
 * worker process with an IPC channel, fed (or not) by this test standing in for its master.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Switchboard } from "../../src/queue/switchboard.js";
import { makeSlice } from "../../src/queue/slice.js";
import { monotonicMs } from "../../src/util/clock.js";
import { tempDir } from "../helpers/tmp.js";
import { BIN, REPO, requireBuild, waitFor } from "./helpers.js";

const CONFIG = `qfiles: ../qfiles
state: ../var
lists: ../lists
log: { level: info }
cluster: { node: n1, slices: 8, lease: 4s, etcd: { endpoints: [http://127.0.0.1:1] } }
`;

let cleanup: (() => Promise<void>) | null = null;
const children: ChildProcess[] = [];

beforeAll(() => requireBuild());
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await cleanup?.();
  cleanup = null;
});

async function site(): Promise<{ dir: string; configFile: string; wipName: string }> {
  const t = await tempDir("qrunner-cluster-fence-");
  cleanup = t.cleanup;
  const configFile = path.join(t.dir, "config/qrunner.yaml");
  await mkdir(path.dirname(configFile), { recursive: true });
  await mkdir(path.join(t.dir, "lists"));
  await writeFile(configFile, CONFIG);
  // an entry of slice 0/8 left in progress, as by a dead node's worker
  const root = path.join(t.dir, "qfiles");
  const all = await Switchboard.open({ root, queue: "incoming" });
  const slice0 = await Switchboard.open({ root, queue: "incoming", slice: makeSlice(0, 8) });
  let wip = null;
  while (!wip) {
    await all.enqueue(Buffer.from("Subject: x\r\n\r\nx\r\n"), {
      sender: "a@example.org",
      recipients: ["nobody@example.org"],
    });
    wip = await slice0.dequeue();
  }
  const wipName = (await readdir(path.join(root, "incoming"))).find((n) => n.endsWith(".wip"))!;
  return { dir: t.dir, configFile, wipName };
}

function worker(configFile: string): {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(
    process.execPath,
    [BIN, "start", "--runner=incoming", "--slice=0/8", "-C", configFile],
    {
      cwd: REPO,
      env: { ...process.env, QRUNNER_ALLOW_ROOT: "1" },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    },
  );
  children.push(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out: () => out, exited };
}

/** A lease message as the master sends it: relative, and absolute on the machine's monotonic clock. */
const send = (c: ChildProcess, ms: number, until = monotonicMs() + ms): void => {
  if (c.connected) c.send({ type: "lease", ms, until }, () => undefined);
};

describe("a cluster worker's lease deadline", () => {
  it("is awaited before the worker touches the queue: without one it exits 70 and recovers nothing", async () => {
    const s = await site();
    const w = worker(s.configFile);
    expect(await w.exited).toBe(70);
    expect(w.out()).toMatch(/no lease deadline from the master/);
    expect(await readdir(path.join(s.dir, "qfiles/incoming"))).toContain(s.wipName);
  });

  it("lets the worker run while renewed, and makes it exit at once when the renewals stop", async () => {
    const s = await site();
    const w = worker(s.configFile);
    // deadlines 5 s ahead: a worker starting on a loaded machine may not read its channel for a while
    const renew = setInterval(() => send(w.child, 5000), 200);
    try {
      await waitFor("the worker ready", () => w.out().includes('"msg":"worker ready"'));
      // it recovered the entry a dead node left in progress: its slice is leased now
      expect(w.out()).toMatch(/"msg":"recovered in-progress entries"/);
      await new Promise((r) => setTimeout(r, 2000));
      expect(w.child.exitCode).toBeNull();
    } finally {
      clearInterval(renew);
    }
    // the master hangs: no renewal; the worker stops on its own, not after its entries in hand
    expect(await w.exited).toBe(70);
    expect(w.out()).toMatch(/did not renew the lease/);
  });

  it("goes by the monotonic deadline: one already past (a message that waited) stops the worker before it recovers anything", async () => {
    const s = await site();
    const w = worker(s.configFile);
    // a generous relative deadline, but the absolute one has passed: the absolute one wins
    await waitFor("the worker listening", () => w.child.connected);
    send(w.child, 60_000, monotonicMs() - 1);
    expect(await w.exited).toBe(70);
    expect(w.out()).toMatch(/did not renew the lease/);
    expect(w.out()).not.toMatch(/"msg":"worker ready"/);
    expect(await readdir(path.join(s.dir, "qfiles/incoming"))).toContain(s.wipName);
  });
});
