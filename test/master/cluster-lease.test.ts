/**
 * Slice leases and the node registry on real directories: probation, takeover of stale leases, a
 * lease taken by two nodes at once, a lost lease, release; the shared settings and node names.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, utimes, writeFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LeaseManager } from "../../src/master/cluster-lease.js";
import {
  agreeSettings,
  clusterPaths,
  ensureClusterDirs,
  NodeRegistry,
  type ClusterPaths,
} from "../../src/master/cluster-registry.js";
import { ClusterSettingsError, NodeInUseError } from "../../src/master/cluster-errors.js";
import { silentLogger } from "../../src/util/log.js";
import { tempDir } from "../helpers/tmp.js";
import { waitFor } from "./helpers.js";

const LEASE = 4000;
let cleanup: (() => Promise<void>) | null = null;
const managers: LeaseManager[] = [];

afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
  await cleanup?.();
  cleanup = null;
});

async function setup(): Promise<{
  paths: ClusterPaths;
  lost: Array<{ slices: number[]; why: string }>;
  m: LeaseManager;
}> {
  const t = await tempDir("qrunner-cluster-lease-");
  cleanup = t.cleanup;
  const paths = clusterPaths(t.dir);
  await ensureClusterDirs(paths);
  const lost: Array<{ slices: number[]; why: string }> = [];
  const m = new LeaseManager({
    dir: paths.leases,
    node: "a",
    leaseMs: LEASE,
    logger: silentLogger(),
    onLost: (slices, why) => lost.push({ slices, why }),
  });
  managers.push(m);
  return { paths, lost, m };
}

/** A lease directory another node holds: fresh, or last refreshed `ageMs` ago. */
async function foreignLease(paths: ClusterPaths, slice: number, ageMs = 0): Promise<string> {
  const dir = path.join(paths.leases, String(slice));
  await mkdir(dir);
  const t = new Date(Date.now() - ageMs);
  await utimes(dir, t, t);
  return dir;
}

describe("LeaseManager", () => {
  it("takes a free lease on probation, and confirms it after its first refresh", async () => {
    const { paths, m } = await setup();
    expect(await m.acquire(3)).toBe(true);
    expect(m.held()).toEqual([3]);
    expect(m.active()).toEqual([]);
    expect(existsSync(path.join(paths.leases, "3"))).toBe(true);
    const owner = JSON.parse(await readFile(path.join(paths.leases, "3.owner"), "utf8")) as { node: string };
    expect(owner.node).toBe("a");
    // refreshed every lease/4 (1 s); only then may workers run on it
    const confirmed = await waitFor("the lease confirmed", async () => {
      const c = await m.confirm();
      return c.length ? c : null;
    });
    expect(confirmed).toEqual([3]);
    expect(m.active()).toEqual([3]);
    expect(m.fenceAt(3)).not.toBeNull();
    await m.release(3);
    expect(m.held()).toEqual([]);
    expect(existsSync(path.join(paths.leases, "3"))).toBe(false);
    expect(existsSync(path.join(paths.leases, "3.owner"))).toBe(false);
  });

  it("leaves a live lease of another node alone and takes over a stale one", async () => {
    const { paths, m } = await setup();
    await foreignLease(paths, 1);
    expect(await m.acquire(1)).toBe(false);
    await foreignLease(paths, 2, LEASE + 2000);
    expect(await m.acquire(2)).toBe(true);
    expect(m.held()).toEqual([2]);
  });

  it("leaves a lease another node took at the same moment to that node", async () => {
    const { paths, m } = await setup();
    expect(await m.acquire(5)).toBe(true);
    // the other node's owner record, written after ours: the directory is its now
    await writeFile(path.join(paths.leases, "5.owner"), JSON.stringify({ node: "b", token: "b 1 x" }));
    const confirmed: number[] = [];
    await waitFor("the lease given up at its first refresh", async () => {
      confirmed.push(...(await m.confirm()));
      return m.held().length === 0;
    });
    expect(confirmed).toEqual([]);
    // not removed: it is the other node's
    expect(existsSync(path.join(paths.leases, "5"))).toBe(true);
  });

  it("reports a lease whose directory vanished, and one not refreshed in time, as lost", async () => {
    const { paths, m, lost } = await setup();
    expect(await m.acquire(0)).toBe(true);
    expect(await m.acquire(1)).toBe(true);
    await rm(path.join(paths.leases, "0"), { recursive: true });
    await waitFor("the vanished lease reported", () => lost.some((l) => l.slices.includes(0)));
    expect(lost[0]?.why).toMatch(/compromised/);
    expect(m.held()).toEqual([1]);
    // as if the refreshes had stopped for more than half the lease time
    expect(m.check(performance.now() + LEASE)).toEqual([1]);
    expect(lost.at(-1)?.slices).toEqual([1]);
    expect(m.held()).toEqual([]);
    // given up, not removed: it goes stale, so that nobody takes it before our workers are gone
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(path.join(paths.leases, "1"))).toBe(true);
  });

  it("releases everything on close", async () => {
    const { paths, m } = await setup();
    for (const k of [0, 2, 4]) expect(await m.acquire(k)).toBe(true);
    await m.close();
    await m.close();
    for (const k of [0, 2, 4]) expect(existsSync(path.join(paths.leases, String(k)))).toBe(false);
  });
});

describe("the cluster directory", () => {
  it("records the first node's slices and lease, and refuses a node that differs", async () => {
    const t = await tempDir("qrunner-cluster-dir-");
    cleanup = t.cleanup;
    const paths = clusterPaths(t.dir);
    await ensureClusterDirs(paths);
    await agreeSettings(paths, { slices: 16, lease: 30_000 });
    await agreeSettings(paths, { slices: 16, lease: 30_000 });
    await expect(agreeSettings(paths, { slices: 8, lease: 30_000 })).rejects.toThrow(ClusterSettingsError);
    await expect(agreeSettings(paths, { slices: 16, lease: 10_000 })).rejects.toThrow(
      /slices: 16, lease: 30s/,
    );
  });

  it("refuses a node name a live master uses, and reuses the record of a dead one", async () => {
    const t = await tempDir("qrunner-cluster-dir-");
    cleanup = t.cleanup;
    const paths = clusterPaths(t.dir);
    await ensureClusterDirs(paths);
    const rec = (host: string, pid: number, refreshedAt: number): string =>
      JSON.stringify({
        format: 1,
        node: "n1",
        weight: 1,
        host,
        pid,
        startedAt: 0,
        refreshedAt,
        slices: [],
        active: [],
      });
    const file = path.join(paths.nodes, "n1.json");
    const reg = new NodeRegistry(paths, "n1", LEASE);

    await writeFile(file, rec("elsewhere.example", 1234, Date.now()));
    await expect(reg.checkName()).rejects.toThrow(NodeInUseError);
    // the same host, but that process is gone: a restart after a crash
    await writeFile(file, rec(os.hostname(), 2 ** 22 + 12345, Date.now()));
    await expect(reg.checkName()).resolves.toBeUndefined();
    // another host, but not refreshed for a lease time: dead
    await writeFile(file, rec("elsewhere.example", 1234, Date.now() - LEASE - 1));
    await expect(reg.checkName()).resolves.toBeUndefined();

    await reg.write({
      weight: 2,
      host: os.hostname(),
      pid: process.pid,
      startedAt: 1,
      slices: [1],
      active: [1],
    });
    const all = await reg.readAll();
    expect(all).toMatchObject([{ node: "n1", weight: 2, slices: [1], pid: process.pid }]);
    await reg.remove();
    await reg.remove();
    expect(await reg.readAll()).toEqual([]);
  });
});
