/**
 * The shared cluster directory `<qfiles>/.cluster`:
 *
 *   cluster.json        the slice count and lease time every node must use (written by the first node)
 *   nodes/<node>.json   one record per node (weight, host, pid, slices), rewritten atomically while it
 *                       lives; a record not rewritten for a lease time is a dead node's
 *   leases/<K>          the lease of slice K (see cluster-lease.ts)
 *
 * Times in the records are wall-clock ms: nodes compare them with their own clocks, which is why the
 * clocks must be kept in sync (NTP) to well within the lease time.
 */
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describeError } from "../util/errors.js";
import { formatDuration } from "../util/units.js";
import { ClusterDirError, ClusterSettingsError, NodeInUseError } from "./cluster-errors.js";
import { pidAlive } from "./lock.js";

export interface ClusterPaths {
  root: string;
  nodes: string;
  leases: string;
  settings: string;
}

export function clusterPaths(qfiles: string): ClusterPaths {
  const root = path.join(qfiles, ".cluster");
  return {
    root,
    nodes: path.join(root, "nodes"),
    leases: path.join(root, "leases"),
    settings: path.join(root, "cluster.json"),
  };
}

export interface NodeRecord {
  format: 1;
  node: string;
  weight: number;
  host: string;
  pid: number;
  /** ms epoch */
  startedAt: number;
  /** ms epoch of this write; the node counts as live while this is younger than the lease time */
  refreshedAt: number;
  /** slices this node holds a lease on (on probation or worked) */
  slices: number[];
  /** slices its workers run on now */
  active: number[];
}

export interface ClusterSettings {
  slices: number;
  /** ms */
  lease: number;
}

/** Create the shared directories (0700). */
export async function ensureClusterDirs(paths: ClusterPaths): Promise<void> {
  try {
    for (const dir of [paths.root, paths.nodes, paths.leases])
      await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ClusterDirError(`cannot create the cluster directory ${paths.root}: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/**
 * Make sure every node uses the same slice count and lease time: the first node records its own
 * (link(2) makes the creation exclusive, NFS included); the others must match it.
 */
export async function agreeSettings(paths: ClusterPaths, mine: ClusterSettings): Promise<void> {
  const tmp = `${paths.settings}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify({ format: 1, ...mine }) + "\n", { mode: 0o600 });
    await link(tmp, paths.settings).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
  } catch (err) {
    throw new ClusterDirError(`cannot write ${paths.settings}: ${describeError(err)}`, { cause: err });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  let theirs: Partial<ClusterSettings>;
  try {
    theirs = JSON.parse(await readFile(paths.settings, "utf8")) as Partial<ClusterSettings>;
  } catch (err) {
    throw new ClusterDirError(`cannot read ${paths.settings}: ${describeError(err)}`, { cause: err });
  }
  if (theirs.slices !== mine.slices || theirs.lease !== mine.lease) {
    const fmt = (s: Partial<ClusterSettings>): string =>
      `slices: ${s.slices ?? "?"}, lease: ${s.lease !== undefined ? formatDuration(s.lease) : "?"}`;
    throw new ClusterSettingsError(
      `this node's cluster settings (${fmt(mine)}) differ from the cluster's (${fmt(theirs)}, in ${paths.settings}); ` +
        "give every node the same cluster.slices and cluster.lease (to change them, stop every node and remove that file)",
    );
  }
}

/** Is this record's node alive, by its last refresh? */
export function isLive(
  rec: Pick<NodeRecord, "refreshedAt">,
  leaseMs: number,
  now: number = Date.now(),
): boolean {
  return now - rec.refreshedAt < leaseMs;
}

export class NodeRegistry {
  private readonly file: string;

  constructor(
    private readonly paths: ClusterPaths,
    private readonly node: string,
    private readonly leaseMs: number,
  ) {
    this.file = path.join(paths.nodes, `${node}.json`);
  }

  /**
   * Refuse a node name a live master uses: one on another host that refreshed its record within the
   * lease time, or a running process on this host. A record of this host's dead master is ours to reuse.
   */
  async checkName(): Promise<void> {
    const rec = (await this.readAll()).find((r) => r.node === this.node);
    if (!rec || !isLive(rec, this.leaseMs) || rec.pid === process.pid) return;
    const here = rec.host === os.hostname();
    if (here && !pidAlive(rec.pid)) return;
    throw new NodeInUseError(
      `cluster node name ${JSON.stringify(this.node)} is in use by pid ${rec.pid} on ${rec.host} ` +
        `(its record ${this.file} was refreshed ${formatDuration(Date.now() - rec.refreshedAt)} ago); ` +
        "give each node its own cluster.node" +
        (here ? "" : `, or wait ${formatDuration(this.leaseMs)} if that node is gone`),
    );
  }

  /** Write this node's record atomically (a temp file renamed within the same directory). */
  async write(rec: Omit<NodeRecord, "format" | "node" | "refreshedAt">): Promise<void> {
    const full: NodeRecord = { format: 1, node: this.node, refreshedAt: Date.now(), ...rec };
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(full) + "\n", { mode: 0o600 });
    await rename(tmp, this.file);
  }

  /** Every node's record (dead ones included; see isLive); unreadable files are skipped. */
  async readAll(): Promise<NodeRecord[]> {
    const out: NodeRecord[] = [];
    for (const name of await readdir(this.paths.nodes)) {
      if (!name.endsWith(".json")) continue;
      try {
        const rec = JSON.parse(await readFile(path.join(this.paths.nodes, name), "utf8")) as NodeRecord;
        if (rec.format === 1 && typeof rec.node === "string" && Array.isArray(rec.slices)) out.push(rec);
      } catch {
        // being replaced, or not ours: skip
      }
    }
    return out;
  }

  /** Remove this node's record when it is still ours (a clean stop). Safe to call twice. */
  async remove(): Promise<void> {
    try {
      const rec = JSON.parse(await readFile(this.file, "utf8")) as Partial<NodeRecord>;
      if (rec.pid === process.pid && rec.host === os.hostname()) await unlink(this.file);
    } catch {
      // gone already
    }
  }
}
