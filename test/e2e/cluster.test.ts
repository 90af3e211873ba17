/**
 * Cluster mode end to end on a real three-member etcd (started here, each member on its own loopback
 * ports and data directory) and real masters sharing one qfiles, with real workers, a recording SMTP
 * server, and real faults: a node SIGKILLed, a node joining, the etcd leader SIGKILLed mid-run, a
 * master SIGSTOPped past its lease and resumed, a node cut off from etcd by a proxy that stops
 * answering. Every (post, member) pair arrives exactly once, except posts whose entries were in
 * progress at a kill (counted, and shown to be such); no entry is handled by a node while another
 * holds its slice.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseSlice, sliceIndices } from "../../src/queue/slice.js";
import { cutProxy, requireEtcd, startEtcd, type CutProxy, type EtcdCluster } from "../helpers/etcd.js";
import { requireBuild, runCli, waitFor } from "../helpers/site.js";
import { ClusterSite, LEASE_S, SLICES, alive, signal } from "./cluster-harness.js";

let etcd: EtcdCluster;
let site: ClusterSite | null = null;
const proxies: CutProxy[] = [];

beforeAll(async () => {
  requireBuild();
  requireEtcd();
  etcd = await startEtcd(3);
}, 60_000);

afterAll(async () => {
  await etcd?.stop();
});

afterEach(async () => {
  await site?.close();
  site = null;
  for (const p of proxies.splice(0)) await p.close();
});

/**
 * Nodes a and b started and settled 4:4; then SMTP answers slowed by `delayMs` and `n` posts tagged
 * `tag` sent, until node a holds some in progress: a's slices, the posts, a's worker pids.
 */
async function withABusy(s: ClusterSite, delayMs: number, tag: string, n: number) {
  await s.start("a");
  await s.start("b");
  const aSlices = (await s.settled({ a: 4, b: 4 })).get("a")!;
  s.sink.setFaults({ dataDelayMs: delayMs });
  const batch = await s.post(tag, n);
  await waitFor("node a to have entries in hand", async () => (await s.wips(aSlices)).length > 0, 30_000);
  return { aSlices, batch, aWorkers: await s.workerPids("a") };
}

async function newSite(endpoints?: (n: string) => string[]): Promise<ClusterSite> {
  site = await ClusterSite.create(endpoints ?? (() => etcd.endpoints), etcd.endpoints);
  return site;
}

describe("cluster mode on etcd", () => {
  it(
    "two nodes share the slices; one SIGKILLed, the other takes them over; a third joins and takes a share",
    { timeout: 300_000 },
    async () => {
      const s = await newSite();
      const t0 = Date.now();
      await s.start("a");
      await s.start("b");
      const two = await s.settled({ a: 4, b: 4 });
      console.log(
        `two nodes split the slices in ${Date.now() - t0} ms: a ${two.get("a")}, b ${two.get("b")}`,
      );
      // `status --json` of each node shows its own workers over its own slices
      const st = await runCli(["status", "--json", "-C", s.configFile("a")]);
      expect(st.code).toBe(0);
      for (const w of (JSON.parse(st.stdout) as { workers: Array<{ slice: string }> }).workers)
        expect(sliceIndices(parseSlice(w.slice))).toEqual(two.get("a"));

      // other slice counts (78) and a live node's name (1) are refused
      await s.writeConfig("x", { slices: 4 });
      const mismatch = await runCli(["start", "-C", s.configFile("x")]);
      expect(mismatch.code).toBe(78);
      expect(mismatch.stderr).toMatch(/cluster.slices \(4\) differs from the cluster's \(8/);
      await s.writeConfig("x", { name: "a" });
      const twin = await runCli(["start", "-C", s.configFile("x")]);
      expect(twin.code).toBe(1);
      expect(twin.stderr).toMatch(/cluster node name "a" is in use by pid \d+/);

      const batch1 = await s.post("one", 20);
      await waitFor("batch one delivered", () => s.delivered(batch1), 30_000);

      // slow transactions, so that node a has entries in hand when it dies
      s.sink.setFaults({ dataDelayMs: 700 });
      const batch2 = await s.post("two", 30);
      const aSlices = two.get("a")!;
      await waitFor("node a to have entries in hand", async () => (await s.wips(aSlices)).length > 0, 30_000);
      const killedAt = Date.now();
      await s.kill("a");
      const left = (await s.wips(aSlices)).length;
      s.sink.clearFaults();
      expect(left).toBeGreaterThan(0);

      const one = await s.settled({ b: SLICES });
      const takeover = Date.now() - killedAt;
      console.log(`node b works node a's slices ${takeover} ms after the SIGKILL (lease ${LEASE_S}s)`);
      expect(one.get("b")).toEqual([...Array(SLICES).keys()]);
      await waitFor("batch two delivered", () => s.delivered(batch2), 40_000);
      const recovered = s
        .lines("b")
        .filter((l) => l["msg"] === "recovered in-progress entries")
        .reduce((n, l) => n + Number(l["recovered"] ?? 0), 0);
      // nothing a left in progress stays stuck: b took every one of them back (or found its successor)
      expect(await s.wips(aSlices)).toEqual([]);

      await s.start("c");
      const three = await s.settled({ b: 4, c: 4 });
      console.log(`node c took its share: b ${three.get("b")}, c ${three.get("c")}`);
      // a weight edit applies live: c with weight 3 gets three quarters
      await s.writeConfig("c", { weight: 3 });
      const weighted = await s.settled({ b: 2, c: 6 });
      const batch3 = await s.post("three", 20);
      await waitFor("batch three delivered", () => s.delivered(batch3), 30_000);

      // a slice key deleted under its holder (an operator's `etcdctl del`): the holder kills that
      // slice's workers at once, and the slices are shared out again
      const victim = weighted.get("c")![0]!;
      const cPids = await s.workerPids("c");
      const deletedAt = Date.now();
      await s.etcd.delete().key(`${s.prefix}slices/${victim}`);
      await waitFor("node c to give the slice up", () =>
        s
          .lines("c")
          .some(
            (l) =>
              String(l["msg"]).startsWith("lost the leases") && (l["slices"] as number[]).includes(victim),
          ),
      );
      const killedPids = (): number[] =>
        s
          .lines("c")
          .filter(
            (l) =>
              l["msg"] === "worker killed: its slice may no longer be worked" &&
              Date.parse(String(l["time"])) >= deletedAt,
          )
          .map((l) => Number(l["workerPid"]));
      await waitFor("node c to log its workers killed", () => killedPids().length >= cPids.length, 10_000);
      expect(killedPids().sort()).toEqual([...cPids].sort());
      await s.settled({ b: 2, c: 6 });

      for (const n of ["b", "c"]) {
        const stop = await runCli(["stop", "-C", s.configFile(n)]);
        expect(stop.code, stop.stderr).toBe(0);
        expect((await s.master(n).exited).code).toBe(0);
      }
      // a clean stop revokes the node's session: its record and slices are gone from etcd at once
      expect(await s.holders()).toEqual(new Map());
      expect(await s.etcd.getAll().prefix(`${s.prefix}nodes/`).keys()).toEqual([]);

      const repeated = s.expectExactlyOnce([...batch1, ...batch2, ...batch3]);
      s.expectNoOverlap({ a: killedAt });
      const checked = s.expectHandledOnlyWhileHeld({ a: killedAt });
      console.log(
        `a left ${left} entries in progress, b recovered ${recovered}; ${repeated} (post, member) pairs repeated, ` +
          `all of posts in progress at a kill; ${checked} handlings checked against the other nodes' slices`,
      );
    },
  );

  it("keeps delivering when the etcd leader is SIGKILLed mid-run", { timeout: 120_000 }, async () => {
    const s = await newSite();
    await s.start("a");
    await s.start("b");
    await s.settled({ a: 4, b: 4 });
    s.sink.setFaults({ dataDelayMs: 50 });
    const batch1 = await s.post("lead", 60);
    await waitFor("deliveries under way", () => s.sink.deliveries().size > 20, 30_000);
    const leader = await etcd.leader();
    expect(leader).not.toBeNull();
    const killedAt = Date.now();
    await etcd.kill(leader!);
    const batch2 = await s.post("after", 30);
    await waitFor("a new etcd leader", async () => (await etcd.leader()) !== null, 20_000);
    const electedMs = Date.now() - killedAt;
    await waitFor("both batches delivered", () => s.delivered([...batch1, ...batch2]), 60_000);
    s.sink.clearFaults();
    // a node whose fence passed during the election killed its workers (their entries in hand are
    // recovered, and may be delivered twice: expectExactlyOnce allows exactly those)
    const fenced = ["a", "b"].flatMap((n) =>
      s.lines(n).filter((l) => String(l["msg"]).startsWith("lost the leases")),
    );
    await s.settled({ a: 4, b: 4 }, 40_000);
    await etcd.restart(leader!);
    const repeated = s.expectExactlyOnce([...batch1, ...batch2]);
    s.expectNoOverlap();
    s.expectHandledOnlyWhileHeld();
    console.log(
      `etcd elected a new leader ${electedMs} ms after the SIGKILL of ${leader!.name}; ` +
        `${fenced.length} fences lost by the nodes; ${repeated} (post, member) pairs repeated`,
    );
  });

  it(
    "a master SIGSTOPped past its lease: its workers stop by themselves, the other node takes over, and once resumed it handles no entry of those slices",
    { timeout: 120_000 },
    async () => {
      const s = await newSite();
      const { aSlices, batch, aWorkers } = await withABusy(s, 700, "stop", 40);
      const aPid = s.master("a").child.pid!;
      signal(aPid, "SIGSTOP");
      const stoppedAt = Date.now();
      // the workers hear nothing more from their master and exit by themselves
      await waitFor("node a's workers gone by themselves", () => aWorkers.every((p) => !alive(p)), 20_000);
      const left = (await s.wips(aSlices)).length;
      s.sink.clearFaults();
      // the lease runs out in etcd; b takes every slice
      await s.settled({ b: SLICES }, 40_000);
      const takenAt = Date.now();
      signal(aPid, "SIGCONT");
      const resumedAt = Date.now();
      await waitFor("batch delivered", () => s.delivered(batch), 60_000);
      // once resumed, a finds its session gone, joins again and gets a share back
      await s.settled({ a: 4, b: 4 }, 40_000);
      const aLines = s.lines("a");
      expect(aLines.some((l) => String(l["msg"]).includes("did not renew the lease"))).toBe(true);
      expect(aLines.some((l) => l["msg"] === "new etcd session")).toBe(true);
      const repeated = s.expectExactlyOnce(batch);
      s.expectNoOverlap();
      const checked = s.expectHandledOnlyWhileHeld();
      console.log(
        `a stopped ${takenAt - stoppedAt} ms before b held every slice, resumed ${resumedAt - stoppedAt} ms after the stop; ` +
          `${left} entries left in progress by a's workers; ${repeated} pairs repeated; ${checked} handlings checked`,
      );
    },
  );

  it(
    "a node cut off from etcd stops its workers before its lease runs out; the other takes over; reconnected, it rejoins",
    { timeout: 120_000 },
    async () => {
      for (const url of etcd.endpoints) proxies.push(await cutProxy(url));
      const s = await newSite((n) => (n === "a" ? proxies.map((p) => p.url) : etcd.endpoints));
      // slow transactions, so that a still has entries in hand when its fence passes
      const { aSlices, batch, aWorkers } = await withABusy(s, 1000, "cut", 60);
      for (const p of proxies) p.cut();
      const cutAt = Date.now();
      await waitFor(
        "node a to kill its workers",
        () => s.lines("a").some((l) => String(l["msg"]).startsWith("lost the leases")),
        20_000,
      );
      await waitFor("node a's workers gone", () => aWorkers.every((p) => !alive(p)), 10_000);
      const fencedMs = Date.now() - cutAt;
      // b cannot hold a's slices yet: a's lease runs out only after the fence
      const held = await s.holders();
      expect(held.get("a")).toEqual(aSlices);
      const left = (await s.wips(aSlices)).length;
      s.sink.clearFaults();
      await s.settled({ b: SLICES }, 40_000);
      const takeoverMs = Date.now() - cutAt;
      for (const p of proxies) p.restore();
      await s.settled({ a: 4, b: 4 }, 40_000);
      await waitFor("batch delivered", () => s.delivered(batch), 60_000);
      const repeated = s.expectExactlyOnce(batch);
      s.expectNoOverlap();
      const checked = s.expectHandledOnlyWhileHeld();
      console.log(
        `cut off: a killed its workers within ${fencedMs} ms, b held every slice ${takeoverMs} ms after the cut ` +
          `(lease ${LEASE_S}s); ${left} entries left in progress; ${repeated} pairs repeated; ${checked} handlings checked`,
      );
    },
  );
});
