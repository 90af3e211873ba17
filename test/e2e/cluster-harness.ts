/**
 * The cluster e2e tests' site: several real masters (each its own state directory and config) over one
 * qfiles, a list of three members, a recording SMTP sink, and a real etcd; what the tests need to
 * watch them: who holds which slice (read from etcd), each node's workers (its status.json), the
 * entries in progress at a kill (as the workers that took them back logged them), and each node's
 * own account of when it worked which slice.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Etcd3 } from "etcd3";
import { expect } from "vitest";
import type { MasterStatus } from "../../src/master/status-file.js";
import { parseName } from "../../src/queue/names.js";
import { parseSlice, sliceIndices, sliceOf } from "../../src/queue/slice.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { startSink, type Sink } from "../helpers/smtp-sink.js";
import { logLines, message, spawnCli, waitFor, type Running } from "../helpers/site.js";

export const SLICES = 8;
export const LEASE_S = 5;
export const MEMBERS = ["m1@example.com", "m2@example.net", "m3@example.org"];
const QUEUES = ["incoming", "outgoing", "bounce", "command", "archive", "backoff"];
let prefixN = 0;

export interface Span {
  node: string;
  slice: number;
  from: number;
  to: number;
}

export class ClusterSite {
  readonly masters = new Map<string, Running>();
  /** every pid a master or worker of this site had: killed at close */
  private readonly pids = new Set<number>();
  /** entry id → the post (Message-ID) it carries: the post's own entry and its successors' */
  private readonly postOf = new Map<string, string>();
  private constructor(
    readonly dir: string,
    readonly sink: Sink,
    readonly etcd: Etcd3,
    readonly prefix: string,
    private readonly endpoints: (node: string) => string[],
  ) {}

  /** A fresh site on its own etcd prefix; `endpoints` gives each node the URLs it reaches etcd by. */
  static async create(endpoints: (node: string) => string[], direct: string[]): Promise<ClusterSite> {
    const sink = await startSink();
    const dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-cluster-"));
    await mkdir(path.join(dir, "config"));
    await mkdir(path.join(dir, "lists"));
    await writeFile(
      path.join(dir, "lists", "dev@example.org.yaml"),
      `address: dev@example.org\nowners: [owner@example.org]\nmembers: [${MEMBERS.join(", ")}]\narchive: false\nnonmembers: accept\n`,
    );
    const prefix = `/qrunner-test-${process.pid}-${++prefixN}/`;
    const etcd = new Etcd3({ hosts: direct });
    return new ClusterSite(dir, sink, etcd, prefix, endpoints);
  }

  configFile(n: string): string {
    return path.join(this.dir, "config", `${n}.yaml`);
  }

  get qfiles(): string {
    return path.join(this.dir, "qfiles");
  }

  async writeConfig(
    n: string,
    extra: { weight?: number; slices?: number; name?: string } = {},
  ): Promise<void> {
    await writeFile(
      this.configFile(n),
      [
        "qfiles: ../qfiles",
        `state: ../var-${n}`,
        "lists: ../lists",
        "log: { level: info }",
        "runners: { outgoing: { instances: 1, concurrency: 4 } }",
        `smtp: { hosts: [{ host: 127.0.0.1, port: ${this.sink.port} }] }`,
        "backoff: { schedule: [1s] }",
        "master: { stop_timeout: 10s }",
        "cluster:",
        `  node: ${extra.name ?? n}`,
        `  slices: ${extra.slices ?? SLICES}`,
        `  weight: ${extra.weight ?? 1}`,
        `  lease: ${LEASE_S}s`,
        `  etcd: { endpoints: [${this.endpoints(n).join(", ")}], prefix: "${this.prefix}" }`,
        "",
      ].join("\n"),
    );
  }

  async start(n: string): Promise<Running> {
    if (!this.masters.has(n)) await this.writeConfig(n);
    const r = spawnCli(["start", "-C", this.configFile(n)]);
    this.masters.set(n, r);
    if (r.child.pid) this.pids.add(r.child.pid);
    return r;
  }

  master(n: string): Running {
    const m = this.masters.get(n);
    if (!m) throw new Error(`no master ${n}`);
    return m;
  }

  async status(n: string): Promise<MasterStatus | null> {
    try {
      return JSON.parse(
        await readFile(path.join(this.dir, `var-${n}`, "status.json"), "utf8"),
      ) as MasterStatus;
    } catch {
      return null;
    }
  }

  /** Worker pids of a node, as its status says. */
  async workerPids(n: string): Promise<number[]> {
    return ((await this.status(n))?.workers ?? []).flatMap((w) => (w.pid === null ? [] : [w.pid]));
  }

  /** Who holds which slice, as etcd says. */
  async holders(): Promise<Map<string, number[]>> {
    const kvs = await this.etcd.getAll().prefix(`${this.prefix}slices/`).strings();
    const out = new Map<string, number[]>();
    for (const [key, node] of Object.entries(kvs)) {
      const k = Number(key.slice(`${this.prefix}slices/`.length));
      out.set(
        node,
        [...(out.get(node) ?? []), k].sort((a, b) => a - b),
      );
    }
    return out;
  }

  /**
   * Wait until each node named holds exactly `want` slices in etcd, no other node holds any, and its
   * status shows all six runners' workers ready over exactly those slices. Returns each node's slices.
   * A wait, not a timing: a node taking six slices starts 36 workers, which on a loaded 2-core CI
   * machine has taken more than 40 s.
   */
  async settled(want: Record<string, number>, timeoutMs = 90_000): Promise<Map<string, number[]>> {
    let out = new Map<string, number[]>();
    await waitFor(
      `the slices split ${JSON.stringify(want)}`,
      async () => {
        const held = await this.holders();
        if ([...held.keys()].some((n) => !(n in want))) return false;
        for (const [n, count] of Object.entries(want)) {
          const mine = held.get(n) ?? [];
          if (mine.length !== count) return false;
          const workers = (await this.status(n))?.workers ?? [];
          if (
            count > 0 &&
            (workers.length !== 6 || workers.some((w) => w.state !== "ready" || w.pid === null))
          )
            return false;
          for (const w of workers) {
            if (w.pid !== null) this.pids.add(w.pid);
            if (JSON.stringify(sliceIndices(parseSlice(w.slice))) !== JSON.stringify(mine)) return false;
          }
        }
        out = held;
        return true;
      },
      timeoutMs,
    );
    const all = [...out.values()].flat().sort((a, b) => a - b);
    expect(all).toEqual([...Array(SLICES).keys()]);
    return out;
  }

  /** Queue `n` posts to the list straight into incoming; returns their Message-IDs. */
  async post(batch: string, n: number): Promise<string[]> {
    const incoming = await Switchboard.open({ root: this.qfiles, queue: "incoming" });
    const ids = Array.from({ length: n }, (_, i) => `<${batch}-${i}@cluster.test>`);
    const entryIds = await incoming.enqueueMany(
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
    // the incoming runner derives its successors' ids from the post's (src/runners/incoming.ts)
    entryIds.forEach((e, i) => {
      const post = ids[i]!;
      this.postOf.set(e, post);
      for (let k = 0; k < 8; k++) this.postOf.set(createHash("sha1").update(`${e}:${k}`).digest("hex"), post);
    });
    return ids;
  }

  delivered(ids: string[]): boolean {
    const d = this.sink.deliveries();
    return ids.every((id) => MEMBERS.every((m) => (d.get(`${id} ${m}`) ?? 0) >= 1));
  }

  /** Entries in progress in these slices, by file name. */
  async wips(slices: readonly number[]): Promise<string[]> {
    const out: string[] = [];
    for (const q of QUEUES)
      for (const f of await readdir(path.join(this.qfiles, q)).catch(() => [] as string[])) {
        const p = parseName(f);
        if (f.endsWith(".wip") && p && slices.includes(sliceOf(p.sha1, SLICES))) out.push(`${q}/${f}`);
      }
    return out;
  }

  /**
   * The posts whose entries (the post itself, or one of its outgoing successors) a worker took back
   * after a kill, by the workers' own "recovered in-progress entries" lines: these, and only these,
   * may be delivered twice.
   */
  recoveredPosts(): Set<string> {
    const out = new Set<string>();
    for (const n of this.masters.keys())
      for (const l of this.lines(n)) {
        if (l["msg"] !== "recovered in-progress entries") continue;
        for (const id of (l["entries"] ?? []) as string[]) {
          const post = this.postOf.get(id);
          if (post !== undefined) out.add(post);
        }
      }
    return out;
  }

  /** A node's log lines (master and workers). */
  lines(n: string): Record<string, unknown>[] {
    return logLines(this.master(n).stdout());
  }

  /**
   * From each node's log: when it started working slices ("slices claimed") and when it stopped
   * ("slices released", "lost the leases", or a worker's own "the master did not renew the lease");
   * a node killed or still running ends at `end[n]` or never.
   */
  spans(end: Record<string, number> = {}): Span[] {
    const spans: Span[] = [];
    for (const n of this.masters.keys()) {
      const open = new Map<number, number>();
      for (const l of this.lines(n)) {
        const at = Date.parse(String(l["time"]));
        // a worker that heard nothing from its (hung) master in time stopped working its slices
        if (String(l["msg"]).startsWith("the master did not renew the lease"))
          for (const k of sliceIndices(parseSlice(String(l["slice"])))) {
            const from = open.get(k);
            if (from !== undefined) spans.push({ node: n, slice: k, from, to: at });
            open.delete(k);
          }
        if (l["role"] !== "master") continue;
        const ks = (l["slices"] ?? []) as number[];
        if (l["msg"] === "slices claimed") for (const k of ks) if (!open.has(k)) open.set(k, at);
        if (l["msg"] === "slices released" || String(l["msg"]).startsWith("lost the leases"))
          for (const k of ks) {
            const from = open.get(k);
            if (from !== undefined) spans.push({ node: n, slice: k, from, to: at });
            open.delete(k);
          }
      }
      for (const [k, from] of open) spans.push({ node: n, slice: k, from, to: end[n] ?? Infinity });
    }
    return spans;
  }

  /** No slice was worked by two nodes at once, by the nodes' own account; returns the spans. */
  expectNoOverlap(end: Record<string, number> = {}): Span[] {
    const spans = this.spans(end);
    for (const s of spans)
      for (const o of spans)
        if (s !== o && s.slice === o.slice && s.node !== o.node)
          expect(s.to <= o.from || o.to <= s.from, `slice ${s.slice}: ${s.node} and ${o.node} overlap`).toBe(
            true,
          );
    return spans;
  }

  /**
   * Every entry a node's workers handled (delivery attempts, posts fanned out) was handled while no
   * other node held its slice. Returns how many handlings were checked.
   */
  expectHandledOnlyWhileHeld(end: Record<string, number> = {}): number {
    const spans = this.spans(end);
    let checked = 0;
    for (const n of this.masters.keys())
      for (const l of this.lines(n)) {
        if (l["msg"] !== "delivery attempt" && l["msg"] !== "post accepted and fanned out") continue;
        const at = Date.parse(String(l["time"]));
        const k = sliceOf(String(l["entry"]), SLICES);
        checked++;
        const other = spans.find((s) => s.node !== n && s.slice === k && s.from < at && at < s.to);
        expect(
          other,
          `${n} handled ${String(l["entry"])} of slice ${k} while ${other?.node} held it`,
        ).toBeUndefined();
      }
    return checked;
  }

  /**
   * Every (post, member) pair of these batches arrived; more than once only for a post that was in
   * progress at a kill. Returns the number of repeated pairs.
   */
  expectExactlyOnce(ids: string[]): number {
    const counts = this.sink.deliveries();
    const recovered = this.recoveredPosts();
    let repeated = 0;
    for (const id of ids)
      for (const m of MEMBERS) {
        const c = counts.get(`${id} ${m}`) ?? 0;
        expect(c, `${id} ${m}`).toBeGreaterThanOrEqual(1);
        if (c > 1) {
          repeated++;
          expect(recovered.has(id), `${id} ${m} delivered ${c} times, not in progress at a kill`).toBe(true);
        }
      }
    return repeated;
  }

  /** SIGKILL a node's master and workers at once; resolves once they are gone. */
  async kill(n: string): Promise<number[]> {
    const pids = [this.master(n).child.pid!, ...(await this.workerPids(n))];
    for (const pid of pids) signal(pid, "SIGKILL");
    await this.master(n).exited;
    await waitFor(`node ${n}'s processes gone`, () => pids.every((p) => !alive(p)));
    return pids;
  }

  async close(): Promise<void> {
    // QRUNNER_TEST_LOGS=DIR keeps each node's log there, for a failure to be read after the fact
    const keep = process.env["QRUNNER_TEST_LOGS"];
    if (keep) {
      await mkdir(keep, { recursive: true });
      for (const [n, m] of this.masters)
        await writeFile(path.join(keep, `${path.basename(this.dir)}-${n}.log`), m.stdout() + m.stderr());
    }
    for (const m of this.masters.values()) {
      if (m.child.pid) signal(m.child.pid, "SIGCONT");
      if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill("SIGKILL");
    }
    for (const pid of this.pids) signal(pid, "SIGKILL");
    await this.etcd
      .delete()
      .prefix(this.prefix)
      .catch(() => undefined);
    this.etcd.close();
    await this.sink.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}

/** Is this process running (a zombie whose stopped parent has not reaped it yet is not)? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) S ...", the state after the last ')'
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}
