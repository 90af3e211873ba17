/**
 * The cluster's state in etcd (keys in cluster-etcd.ts): the settings every node must share, the
 * live nodes' records and who holds each slice. Every write that matters is a transaction guarded by
 * what etcd holds (a key's create revision, the lease a key is attached to), so a node acts only on
 * its own session's keys: a claim succeeds only on a slice nobody holds, and a release deletes a slice
 * key only while it is still attached to our lease.
 */
import os from "node:os";
import type { Watcher } from "etcd3";
import { describeError } from "../util/errors.js";
import { ClusterEtcdError, ClusterSettingsError, NodeInUseError } from "./cluster-errors.js";
import { NODES, SETTINGS_KEY, nodeKey, sliceKey, sliceOfKey, type EtcdHandle } from "./cluster-etcd.js";
import type { EtcdSession } from "./cluster-session.js";
import { pidAlive } from "./proc.js";

export interface NodeRecord {
  format: 1;
  node: string;
  weight: number;
  host: string;
  pid: number;
  /** ms epoch, for people reading it (never compared) */
  startedAt: number;
}

export interface SliceHolder {
  node: string;
  /** the session lease the slice key is attached to */
  lease: string;
}

export interface ClusterView {
  /** live nodes' records (a dead node's record went with its lease) */
  nodes: NodeRecord[];
  /** slice → holder */
  holders: Map<number, SliceHolder>;
}

function parseRecord(value: Buffer): NodeRecord | null {
  try {
    const r = JSON.parse(value.toString("utf8")) as Partial<NodeRecord>;
    if (r.format === 1 && typeof r.node === "string" && typeof r.weight === "number") return r as NodeRecord;
  } catch {
    // not ours: skip
  }
  return null;
}

export class EtcdRegistry {
  constructor(
    private readonly etcd: EtcdHandle,
    private readonly node: string,
  ) {}

  /**
   * Make sure every node uses the same slice count: the first node records its own (a transaction
   * that creates the key only when absent); the others must match it.
   */
  async agreeSettings(slices: number): Promise<void> {
    const { ns } = this.etcd;
    const mine = JSON.stringify({ format: 1, slices });
    const res = await ns
      .if(SETTINGS_KEY, "Create", "==", 0)
      .then(ns.put(SETTINGS_KEY).value(mine))
      .else(ns.get(SETTINGS_KEY))
      .commit();
    if (res.succeeded) return;
    const kv = res.responses[0]?.response_range?.kvs[0];
    let theirs: { slices?: unknown } = {};
    try {
      theirs = kv ? (JSON.parse(kv.value.toString("utf8")) as { slices?: unknown }) : {};
    } catch {
      // unreadable: reported as a mismatch below
    }
    if (theirs.slices !== slices)
      throw new ClusterSettingsError(
        `this node's cluster.slices (${slices}) differs from the cluster's (${String(theirs.slices ?? "?")}, ` +
          `in etcd at ${this.etcd.ns.prefix.toString()}${SETTINGS_KEY}); give every node the same cluster.slices ` +
          "(to change it, stop every node and delete that key)",
      );
  }

  /**
   * Write this node's record under its session, refusing a name a live master uses. A record left
   * by this host's own dead master (its lease not yet run out) is taken over: its lease is revoked,
   * which also frees its slices (its workers are gone: the master waited for them before joining).
   */
  async register(session: EtcdSession, rec: Omit<NodeRecord, "format" | "node">): Promise<void> {
    const { ns } = this.etcd;
    const key = nodeKey(this.node);
    const value = JSON.stringify({ format: 1, node: this.node, ...rec } satisfies NodeRecord);
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await ns
        .if(key, "Create", "==", 0)
        .then(ns.put(key).value(value).lease(session.id))
        .else(ns.get(key))
        .commit();
      if (res.succeeded) return;
      const kv = res.responses[0]?.response_range?.kvs[0];
      if (!kv) continue; // gone meanwhile: try again
      if (kv.lease === session.id) {
        await this.update(session, rec);
        return;
      }
      const other = parseRecord(kv.value);
      if (other && other.host === os.hostname() && other.pid !== process.pid && !pidAlive(other.pid)) {
        await ns.leaseClient
          .leaseRevoke({ ID: kv.lease }, { deadline: this.etcd.deadline() })
          .catch(() => undefined);
        continue;
      }
      throw new NodeInUseError(
        `cluster node name ${JSON.stringify(this.node)} is in use by pid ${other?.pid ?? "?"} on ${other?.host ?? "?"} ` +
          `(its record in etcd: ${ns.prefix.toString()}${key}, lease ${kv.lease}); give each node its own cluster.node, ` +
          "or wait for that node's lease to run out if it is gone",
      );
    }
    throw new ClusterEtcdError(
      `cannot register node ${JSON.stringify(this.node)} in etcd: its record keeps changing`,
    );
  }

  /** Rewrite this node's record (a weight edit), only while it is still attached to our session. */
  async update(session: EtcdSession, rec: Omit<NodeRecord, "format" | "node">): Promise<void> {
    const { ns } = this.etcd;
    const key = nodeKey(this.node);
    const value = JSON.stringify({ format: 1, node: this.node, ...rec } satisfies NodeRecord);
    await ns.if(key, "Lease", "==", session.id).then(ns.put(key).value(value).lease(session.id)).commit();
  }

  /** The live nodes and the slice holders, read at one revision (one range over the prefix). */
  async view(): Promise<ClusterView> {
    const res = await this.etcd.ns.getAll().prefix("").exec();
    const nodes: NodeRecord[] = [];
    const holders = new Map<number, SliceHolder>();
    for (const kv of res.kvs) {
      const key = kv.key.toString("utf8");
      if (key.startsWith(NODES)) {
        const r = parseRecord(kv.value);
        if (r) nodes.push(r);
        continue;
      }
      const k = sliceOfKey(key);
      if (k !== null) holders.set(k, { node: kv.value.toString("utf8"), lease: kv.lease });
    }
    return { nodes, holders };
  }

  /** Take slice K for this session if nobody holds it; true when taken. */
  async claim(session: EtcdSession, slice: number): Promise<boolean> {
    const { ns } = this.etcd;
    const key = sliceKey(slice);
    const res = await ns
      .if(key, "Create", "==", 0)
      .and(nodeKey(this.node), "Lease", "==", session.id)
      .then(ns.put(key).value(this.node).lease(session.id))
      .commit();
    return res.succeeded;
  }

  /** Give slice K up, only if our session still holds it (its workers must have stopped). */
  async release(session: EtcdSession, slice: number): Promise<void> {
    const { ns } = this.etcd;
    const key = sliceKey(slice);
    await ns.if(key, "Lease", "==", session.id).then(ns.delete().key(key)).commit();
  }

  /**
   * Call `onChange` whenever a node or slice key changes (a node joins, leaves or dies, a slice is
   * released or taken); the watch reconnects by itself. Null when it cannot be set up now (the
   * periodic step still runs).
   */
  async watch(onChange: () => void, onError: (err: string) => void): Promise<Watcher | null> {
    try {
      const w = await this.etcd.ns.watch().prefix("").create();
      w.on("put", () => onChange());
      w.on("delete", () => onChange());
      w.on("error", (err) => onError(describeError(err)));
      return w;
    } catch (err) {
      onError(describeError(err));
      return null;
    }
  }
}
