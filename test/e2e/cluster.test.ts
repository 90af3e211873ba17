/**
 * Cluster mode end to end: real masters (separate state directories) sharing one qfiles, real
 * workers, a recording SMTP server, real SIGKILLs. Two nodes split the slices; one is killed with
 * its workers and the other takes its slices once the leases go stale, recovering what the dead node
 * left in progress; a third node joining takes its share; everything is delivered, and no entry is
 * handled by two nodes except the ones the dead node had in hand.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Switchboard } from "../../src/queue/switchboard.js";
import { parseName } from "../../src/queue/names.js";
import { parseSlice, sliceIndices, sliceOf } from "../../src/queue/slice.js";
import type { NodeRecord } from "../../src/master/cluster-registry.js";
import type { MasterStatus } from "../../src/master/status-file.js";
import { startSink, messageIdOf, type Sink } from "../helpers/smtp-sink.js";
import { logLines, message, requireBuild, runCli, spawnCli, waitFor, type Running } from "../helpers/site.js";

const SLICES = 8;
const LEASE = "4s";
const NODES = ["a", "b", "c"] as const;
type Node = (typeof NODES)[number];
const MEMBERS = ["m1@example.com", "m2@example.net", "m3@example.org"];
const QUEUES = ["incoming", "outgoing", "bounce", "command", "archive", "backoff"];

let dir = "";
let sink: Sink | null = null;
const masters = new Map<Node, Running>();
const pids = new Set<number>();

const configFile = (n: Node): string => path.join(dir, "config", `${n}.yaml`);
const stateDir = (n: Node): string => path.join(dir, `var-${n}`);
const qfiles = (): string => path.join(dir, "qfiles");

beforeAll(async () => {
  requireBuild();
  sink = await startSink();
  dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-cluster-"));
  await mkdir(path.join(dir, "config"));
  await mkdir(path.join(dir, "lists"));
  await writeFile(
    path.join(dir, "lists", "dev@example.org.yaml"),
    `address: dev@example.org\nowners: [owner@example.org]\nmembers: [${MEMBERS.join(", ")}]\narchive: false\nnonmembers: accept\n`,
  );
  for (const n of NODES)
    await writeFile(
      configFile(n),
      [
        "qfiles: ../qfiles",
        `state: ../var-${n}`,
        "lists: ../lists",
        "log: { level: info }",
        "runners: { outgoing: { instances: 1, concurrency: 4 } }",
        `smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port} }] }`,
        "backoff: { schedule: [1s] }",
        "master: { stop_timeout: 10s }",
        `cluster: { node: ${n}, slices: ${SLICES}, lease: ${LEASE} }`,
        "",
      ].join("\n"),
    );
});

afterAll(async () => {
  for (const m of masters.values())
    if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill("SIGKILL");
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  await sink?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function start(n: Node): Running {
  const r = spawnCli(["start", "-C", configFile(n)]);
  masters.set(n, r);
  if (r.child.pid) pids.add(r.child.pid);
  return r;
}

async function status(n: Node): Promise<MasterStatus | null> {
  try {
    return JSON.parse(await readFile(path.join(stateDir(n), "status.json"), "utf8")) as MasterStatus;
  } catch {
    return null;
  }
}

async function record(n: Node): Promise<NodeRecord | null> {
  try {
    return JSON.parse(
      await readFile(path.join(qfiles(), ".cluster/nodes", `${n}.json`), "utf8"),
    ) as NodeRecord;
  } catch {
    return null;
  }
}

/**
 * Wait until each node works exactly `want` slices: its record says so, and its status shows every
 * runner's workers ready over exactly those slices. Returns each node's slices.
 */
async function settled(
  want: Partial<Record<Node, number>>,
  timeoutMs = 40_000,
): Promise<Map<Node, number[]>> {
  const out = new Map<Node, number[]>();
  await waitFor(
    `the slices split ${JSON.stringify(want)}`,
    async () => {
      for (const [n, count] of Object.entries(want) as [Node, number][]) {
        const rec = await record(n);
        const st = await status(n);
        if (!rec || !st || rec.active.length !== count || rec.slices.length !== count) return false;
        const workers = st.workers;
        if (workers.length !== 6 || workers.some((w) => w.state !== "ready" || w.pid === null)) return false;
        for (const w of workers) {
          pids.add(w.pid!);
          if (JSON.stringify(sliceIndices(parseSlice(w.slice))) !== JSON.stringify(rec.active)) return false;
        }
        out.set(n, rec.active);
      }
      return true;
    },
    timeoutMs,
  );
  return out;
}

function expectPartition(split: Map<Node, number[]>): void {
  const all = [...split.values()].flat();
  expect(new Set(all).size).toBe(all.length);
  expect(all.sort((x, y) => x - y)).toEqual([...Array(SLICES).keys()]);
}

/** Queue `n` posts to the list straight into incoming; returns their Message-IDs. */
async function post(batch: string, n: number): Promise<string[]> {
  const incoming = await Switchboard.open({ root: qfiles(), queue: "incoming" });
  const ids = Array.from({ length: n }, (_, i) => `<${batch}-${i}@cluster.test>`);
  await incoming.enqueueMany(
    ids.map((id) => ({
      message: message({ id, subject: `${batch} ${id}` }),
      meta: {
        sender: "alice@example.net",
        recipients: ["dev@example.org"],
        to: "dev@example.org",
        list: "dev@example.org",
        kind: "post" as const,
      },
    })),
  );
  return ids;
}

const delivered = (ids: string[]): boolean => {
  const d = sink!.deliveries();
  return ids.every((id) => MEMBERS.every((m) => (d.get(`${id} ${m}`) ?? 0) >= 1));
};

describe("cluster mode", () => {
  it(
    "splits, takes over after a SIGKILL, lets a third node in, and delivers everything once",
    { timeout: 120_000 },
    async () => {
      const t0 = Date.now();
      start("a");
      start("b");
      const two = await settled({ a: 4, b: 4 });
      expectPartition(two);
      // `status --json` of each node shows its own workers over its own slices
      for (const n of ["a", "b"] as const) {
        const s = await runCli(["status", "--json", "-C", configFile(n)]);
        expect(s.code).toBe(0);
        const js = JSON.parse(s.stdout) as { workers: Array<{ slice: string }> };
        for (const w of js.workers) expect(sliceIndices(parseSlice(w.slice))).toEqual(two.get(n));
      }
      console.log(
        `two nodes split the slices in ${Date.now() - t0} ms: a ${two.get("a")}, b ${two.get("b")}`,
      );

      // a node with other cluster settings (78), or another master with a live node's name (1), is refused
      const other = (await readFile(configFile("c"), "utf8")).replace("var-c", "var-x");
      await writeFile(path.join(dir, "config", "x.yaml"), other.replace(`slices: ${SLICES}`, "slices: 4"));
      const mismatch = await runCli(["start", "-C", path.join(dir, "config", "x.yaml")]);
      expect(mismatch.code).toBe(78);
      expect(mismatch.stderr).toMatch(/differ from the cluster's \(slices: 8, lease: 4s/);
      await writeFile(path.join(dir, "config", "x.yaml"), other.replace("node: c", "node: a"));
      const twin = await runCli(["start", "-C", path.join(dir, "config", "x.yaml")]);
      expect(twin.code).toBe(1);
      expect(twin.stderr).toMatch(/cluster node name "a" is in use by pid \d+/);

      const batch1 = await post("one", 20);
      await waitFor("batch one delivered", () => delivered(batch1), 30_000);

      // slow transactions, so that node a has entries in hand when it dies
      sink!.setFaults({ dataDelayMs: 700 });
      const batch2 = await post("two", 30);
      const aSlices = two.get("a")!;
      const inA = (name: string): boolean => {
        const p = parseName(name);
        return p !== null && aSlices.includes(sliceOf(p.sha1, SLICES));
      };
      await waitFor(
        "node a to have outgoing entries in hand",
        async () =>
          (await readdir(path.join(qfiles(), "outgoing"))).some((f) => f.endsWith(".wip") && inA(f)),
        30_000,
      );
      const aPids = [
        masters.get("a")!.child.pid!,
        ...((await status("a"))?.workers ?? []).map((w) => w.pid!),
      ];
      const killedAt = Date.now();
      for (const pid of aPids) process.kill(pid, "SIGKILL");
      await masters.get("a")!.exited;
      await waitFor("node a's workers gone", () => aPids.every((p) => !alive(p)));
      sink!.clearFaults();

      // what a left in progress (b works on, in its own slices): the next owner of a's must recover it
      const leftInHand = new Set<string>();
      const leftPosts = new Set<string>();
      for (const q of QUEUES) {
        const sb = await Switchboard.open({ root: qfiles(), queue: q });
        for (const f of await readdir(path.join(qfiles(), q)).catch(() => [] as string[])) {
          if (!f.endsWith(".wip") || !inA(f)) continue;
          leftInHand.add(parseName(f)!.sha1);
          const e = await sb.peek(f).catch(() => null);
          if (e) leftPosts.add(messageIdOf(e.message));
        }
      }
      expect(leftInHand.size).toBeGreaterThan(0);

      const one = await settled({ b: 8 });
      console.log(
        `node b took node a's slices ${Date.now() - killedAt} ms after the SIGKILL (lease ${LEASE})`,
      );
      expect(one.get("b")).toEqual([...Array(SLICES).keys()]);
      await waitFor("batch two delivered", () => delivered(batch2), 40_000);
      const recovered = logLines(masters.get("b")!.stdout())
        .filter((l) => l["msg"] === "recovered in-progress entries")
        .reduce((n, l) => n + Number(l["recovered"] ?? 0), 0);
      expect(recovered).toBeGreaterThanOrEqual(leftInHand.size);

      start("c");
      const three = await settled({ b: 4, c: 4 });
      expectPartition(three);
      console.log(`node c took its share: b ${three.get("b")}, c ${three.get("c")}`);
      // a weight edit applies live: c with weight 3 gets three quarters
      await writeFile(
        configFile("c"),
        (await readFile(configFile("c"), "utf8")).replace("node: c,", "node: c, weight: 3,"),
      );
      const weighted = await settled({ b: 2, c: 6 });
      expectPartition(weighted);
      const batch3 = await post("three", 20);
      await waitFor("batch three delivered", () => delivered(batch3), 30_000);

      // a lease that vanishes under its holder (an operator's rm, a server restored from backup): the
      // holder kills the workers of that slice at once, and the slices are shared out again
      const victim = weighted.get("c")![0]!;
      const cPids = ((await status("c"))?.workers ?? []).map((w) => w.pid!);
      await rm(path.join(qfiles(), ".cluster/leases", String(victim)), { recursive: true });
      await waitFor("node c to give up the slice", () =>
        logLines(masters.get("c")!.stdout()).some(
          (l) => String(l["msg"]).startsWith("lost the leases") && (l["slices"] as number[]).includes(victim),
        ),
      );
      // the master logs each kill right after "lost the leases", in writes of their own: the lines can
      // reach this reader in separate chunks, so wait for as many as there were workers
      const killedPids = (): number[] =>
        logLines(masters.get("c")!.stdout())
          .filter((l) => l["msg"] === "worker killed: its slice may no longer be worked")
          .map((l) => Number(l["workerPid"]));
      await waitFor("node c to log its workers killed", () => killedPids().length >= cPids.length, 10_000);
      expect(killedPids().sort()).toEqual([...cPids].sort());
      expectPartition(await settled({ b: 2, c: 6 }));

      for (const n of ["b", "c"] as const) {
        const stop = await runCli(["stop", "-C", configFile(n)]);
        expect(stop.code, stop.stderr).toBe(0);
        expect((await masters.get(n)!.exited).code).toBe(0);
      }
      // a clean stop releases every lease and removes the node's record; the dead node's record stays
      const leases = await readdir(path.join(qfiles(), ".cluster/leases"));
      expect(
        leases.filter((f) => !f.endsWith(".owner") && !f.includes(".tmp") && !aSlices.includes(Number(f))),
      ).toEqual([]);
      expect(existsSync(path.join(qfiles(), ".cluster/nodes/b.json"))).toBe(false);
      expect(existsSync(path.join(qfiles(), ".cluster/nodes/c.json"))).toBe(false);

      // every recipient got every post; twice only for a post the dead node had in hand
      const counts = sink!.deliveries();
      for (const id of [...batch1, ...batch2, ...batch3])
        for (const m of MEMBERS) {
          const c = counts.get(`${id} ${m}`) ?? 0;
          expect(c, `${id} ${m}`).toBeGreaterThanOrEqual(1);
          if (c > 1) expect(leftPosts.has(id), `${id} ${m} delivered ${c} times`).toBe(true);
        }

      // each entry was handled by one node only, except those recovered from the dead node
      const handledBy = new Map<string, Set<Node>>();
      for (const [n, m] of masters)
        for (const l of logLines(m.stdout())) {
          if (l["msg"] !== "delivery attempt" && l["msg"] !== "post accepted and fanned out") continue;
          const id = String(l["entry"]);
          handledBy.set(id, (handledBy.get(id) ?? new Set()).add(n));
        }
      expect(handledBy.size).toBeGreaterThan(70);
      // a recovered post is fanned out again into the same outgoing entries (ids derived from its own,
      // as src/runners/incoming.ts does), which may have been delivered already: those count as recovered
      const recoveredIds = new Set(leftInHand);
      for (const id of leftInHand)
        for (let i = 0; i < 4; i++) recoveredIds.add(createHash("sha1").update(`${id}:${i}`).digest("hex"));
      for (const [id, nodes] of handledBy)
        if (nodes.size > 1)
          expect(recoveredIds.has(id), `${id} handled by ${[...nodes].join(" and ")}`).toBe(true);

      // and no slice was ever worked by two nodes at once, by the nodes' own account
      expectNoOverlap(killedAt);
      const dups = [...counts.values()].filter((c) => c > 1).length;
      const lost = [...masters.values()]
        .flatMap((m) => logLines(m.stdout()))
        .filter((l) => String(l["msg"]).startsWith("lost the leases"));
      console.log(
        `a left ${leftInHand.size} entries in progress; b recovered ${recovered}; ${dups} deliveries repeated; ${lost.length} leases lost by a live node (1 on purpose)`,
      );
    },
  );
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * From each master's log: when it started working slices ("slices claimed") and when it stopped
 * ("slices released" once the workers were gone, "lost the leases"); the killed node stops at the kill.
 */
function expectNoOverlap(killedAt: number): void {
  const spans: Array<{ node: Node; slice: number; from: number; to: number }> = [];
  for (const [n, m] of masters) {
    const open = new Map<number, number>();
    for (const l of logLines(m.stdout())) {
      if (l["role"] !== "master") continue;
      const at = Date.parse(String(l["time"]));
      const ks = (l["slices"] ?? []) as number[];
      if (l["msg"] === "slices claimed") for (const k of ks) open.set(k, at);
      if (l["msg"] === "slices released" || String(l["msg"]).startsWith("lost the leases"))
        for (const k of ks) {
          const from = open.get(k);
          if (from !== undefined) spans.push({ node: n, slice: k, from, to: at });
          open.delete(k);
        }
    }
    for (const [k, from] of open)
      spans.push({ node: n, slice: k, from, to: n === "a" ? killedAt : Infinity });
  }
  for (const s of spans)
    for (const o of spans)
      if (s !== o && s.slice === o.slice && s.node !== o.node)
        expect(s.to <= o.from || o.to <= s.from, `slice ${s.slice}: ${s.node} and ${o.node} overlap`).toBe(
          true,
        );
  expect(new Set(spans.map((s) => s.node))).toEqual(new Set(["a", "b", "c"]));
}
