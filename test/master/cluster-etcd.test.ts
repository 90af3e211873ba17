/**
 * The etcd side of cluster mode against a real etcd (one member, started by the test): a session
 * kept alive past its TTL, fenced when its keep-alives stop getting through and trusted again when
 * they do, ended when etcd drops its lease; the registry's settings, node names, claims and releases,
 * every one a transaction on what etcd holds.
 */
import { spawn } from "node:child_process";
import os from "node:os";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openEtcd, type EtcdHandle } from "../../src/master/cluster-etcd.js";
import { ClusterSettingsError, NodeInUseError } from "../../src/master/cluster-errors.js";
import { EtcdRegistry } from "../../src/master/cluster-registry.js";
import { EtcdSession } from "../../src/master/cluster-session.js";
import { monotonicMs } from "../../src/util/clock.js";
import { silentLogger } from "../../src/util/log.js";
import { cutProxy, requireEtcd, startEtcd, type CutProxy, type EtcdCluster } from "../helpers/etcd.js";
import { waitFor } from "./helpers.js";

const TTL = 3000;
let etcd: EtcdCluster;
let prefixN = 0;
const handles: EtcdHandle[] = [];
const sessions: EtcdSession[] = [];
const proxies: CutProxy[] = [];

beforeAll(async () => {
  requireEtcd();
  etcd = await startEtcd(1);
}, 60_000);

afterAll(async () => {
  await etcd?.stop();
});

afterEach(async () => {
  for (const s of sessions.splice(0)) await s.revoke();
  for (const h of handles.splice(0)) h.close();
  for (const p of proxies.splice(0)) await p.close();
});

/** A client on its own key prefix, so that the tests do not see each other's keys. */
async function client(endpoints: string[] = etcd.endpoints, prefix = `/t${++prefixN}/`): Promise<EtcdHandle> {
  const h = await openEtcd({ endpoints, prefix }, 1000);
  handles.push(h);
  return h;
}

async function session(
  h: EtcdHandle,
  events: { ended?: string[]; renewed?: number[] } = {},
): Promise<EtcdSession> {
  const s = await EtcdSession.open({
    etcd: h,
    ttlMs: TTL,
    logger: silentLogger(),
    onEnded: (why) => events.ended?.push(why),
    onRenewed: () => events.renewed?.push(1),
  });
  sessions.push(s);
  return s;
}

const rec = { weight: 1, host: os.hostname(), pid: process.pid, startedAt: 0 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("EtcdSession", () => {
  it("keeps its lease alive past the TTL, the fence moving with each keep-alive", async () => {
    const h = await client();
    const s = await session(h);
    const firstFence = s.fenceAt();
    expect(s.trusted()).toBe(true);
    await h.ns.put("k").value("v").lease(s.id);
    await sleep(TTL * 2);
    expect(s.trusted()).toBe(true);
    expect(s.fenceAt()).toBeGreaterThan(firstFence + TTL);
    // the fence never runs past half the TTL from now: counted from a keep-alive already sent
    expect(s.fenceAt()).toBeLessThanOrEqual(monotonicMs() + TTL / 2);
    expect(await h.ns.get("k").string()).toBe("v");
  });

  it("is fenced when cut off from etcd, trusted again when a keep-alive gets through in time", async () => {
    const proxy = await cutProxy(etcd.endpoints[0]!);
    proxies.push(proxy);
    const h = await client([proxy.url]);
    const events = { ended: [] as string[], renewed: [] as number[] };
    const s = await session(h, events);
    await h.ns.put("k").value("v").lease(s.id);
    proxy.cut();
    await waitFor("the session fenced", () => !s.trusted(), 10_000);
    // fenced, not ended: etcd never said the lease was gone
    expect(events.ended).toEqual([]);
    proxy.restore();
    await waitFor("the session trusted again", () => s.trusted(), 30_000);
    expect(events.renewed.length).toBeGreaterThan(0);
    // the lease (and what hangs on it) never went away: the cut was shorter than the TTL
    const other = await client(etcd.endpoints, h.ns.prefix.toString());
    expect(await other.ns.get("k").string()).toBe("v");
  });

  it("ends when etcd drops the lease, and everything attached to it goes", async () => {
    const h = await client();
    const events = { ended: [] as string[] };
    const s = await session(h, events);
    await h.ns.put("k").value("v").lease(s.id);
    const other = await client(etcd.endpoints, h.ns.prefix.toString());
    await other.ns.leaseClient.leaseRevoke({ ID: s.id });
    await waitFor("the session ended", () => events.ended.length > 0, 10_000);
    expect(s.trusted()).toBe(false);
    expect(s.isEnded).toBe(true);
    expect(await other.ns.get("k").string()).toBeNull();
  });

  it("left to run out (a dead node), loses its keys once the TTL has passed on etcd's side", async () => {
    const h = await client();
    const s = await session(h);
    await h.ns.put("k").value("v").lease(s.id);
    const stoppedAt = monotonicMs();
    s.close();
    const other = await client(etcd.endpoints, h.ns.prefix.toString());
    await waitFor("the key gone", async () => (await other.ns.get("k").string()) === null, 15_000);
    // never before the TTL counted from the last keep-alive, itself before the close
    expect(monotonicMs() - stoppedAt).toBeGreaterThan(TTL - TTL / 6 - 200);
  });
});

describe("EtcdRegistry", () => {
  it("records the first node's slice count and refuses a node that differs", async () => {
    const h = await client();
    await new EtcdRegistry(h, "a").agreeSettings(8);
    await new EtcdRegistry(h, "b").agreeSettings(8);
    await expect(new EtcdRegistry(h, "c").agreeSettings(4)).rejects.toThrow(ClusterSettingsError);
    await expect(new EtcdRegistry(h, "c").agreeSettings(4)).rejects.toThrow(
      /cluster.slices \(4\) differs from the cluster's \(8/,
    );
  });

  it("refuses a node name a live session holds, and takes over the record of this host's dead master", async () => {
    const h = await client();
    const s1 = await session(h);
    const s2 = await session(h);
    const a1 = new EtcdRegistry(h, "a");
    await a1.register(s1, rec);
    await expect(new EtcdRegistry(h, "a").register(s2, rec)).rejects.toThrow(NodeInUseError);
    // a record left by a master of this host that is gone (a pid that has exited): its lease is revoked
    const dead = spawn(process.execPath, ["-e", "0"]);
    const deadPid = dead.pid!;
    await new Promise((r) => dead.on("exit", r));
    const s3 = await session(h);
    const s4 = await session(h);
    const b = new EtcdRegistry(h, "b");
    await b.register(s3, { ...rec, pid: deadPid });
    expect(await b.claim(s3, 5)).toBe(true);
    await new EtcdRegistry(h, "b").register(s4, rec);
    const view = await b.view();
    expect(view.nodes.map((n) => n.node).sort()).toEqual(["a", "b"]);
    expect(view.nodes.find((n) => n.node === "b")?.pid).toBe(process.pid);
    // the dead master's slice went with its lease
    expect(view.holders.has(5)).toBe(false);
  });

  it("claims a slice for one session only, and releases it only for the session holding it", async () => {
    const h = await client();
    const sa = await session(h);
    const sb = await session(h);
    const a = new EtcdRegistry(h, "a");
    const b = new EtcdRegistry(h, "b");
    await a.register(sa, rec);
    await b.register(sb, rec);
    const results = await Promise.all([a.claim(sa, 3), b.claim(sb, 3)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results[0] ? { reg: a, s: sa, name: "a" } : { reg: b, s: sb, name: "b" };
    const loser = results[0] ? { reg: b, s: sb } : { reg: a, s: sa };
    expect((await a.view()).holders.get(3)).toEqual({ node: winner.name, lease: winner.s.id });
    // the other cannot delete it
    await loser.reg.release(loser.s, 3);
    expect((await a.view()).holders.get(3)?.node).toBe(winner.name);
    await winner.reg.release(winner.s, 3);
    expect((await a.view()).holders.has(3)).toBe(false);
    expect(await loser.reg.claim(loser.s, 3)).toBe(true);
  });

  it("cannot claim for a session whose record is not registered (a session that ended)", async () => {
    const h = await client();
    const s = await session(h);
    const a = new EtcdRegistry(h, "a");
    expect(await a.claim(s, 1)).toBe(false);
    await a.register(s, rec);
    expect(await a.claim(s, 1)).toBe(true);
  });

  it("reports changes through the watch", async () => {
    const h = await client();
    const s = await session(h);
    const a = new EtcdRegistry(h, "a");
    let changes = 0;
    const w = await a.watch(
      () => changes++,
      () => undefined,
    );
    expect(w).not.toBeNull();
    await a.register(s, rec);
    await a.claim(s, 2);
    await waitFor("two changes", () => changes >= 2, 5000);
    await w?.cancel();
  });
});
