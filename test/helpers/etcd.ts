/**
 * A real etcd for the tests: Debian's `etcd` binary (package etcd-server), one or three members, each
 * on its own loopback ports and data directory under a temp dir, started here and killed after. And
 * a TCP proxy that can be cut, to take a node off etcd without touching etcd itself.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export function etcdInstalled(): boolean {
  return spawnSync("etcd", ["--version"], { stdio: "ignore" }).status === 0;
}

/** Skip-proof: a test that needs etcd fails with this, not silently passes. */
export function requireEtcd(): void {
  if (!etcdInstalled())
    throw new Error("the etcd binary is missing: apt-get install etcd-server (as .ci/run does)");
}

/** A free loopback port (bound, read, released: another process could take it meanwhile, rarely). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  child: ChildProcess | null;
  /** stderr/stdout of the current process */
  log(): string;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  /** every member's client URL */
  readonly endpoints: string[];
  /** the member that leads now (asked of the live members), or null */
  leader(): Promise<EtcdMember | null>;
  /** SIGKILL a member (its data stays) */
  kill(m: EtcdMember): Promise<void>;
  /** start a killed member again on its data */
  restart(m: EtcdMember): Promise<void>;
  /** is a write through these endpoints possible now? */
  healthy(endpoints?: string[]): Promise<boolean>;
  stop(): Promise<void>;
}

async function status(url: string): Promise<{ leader?: string; header?: { member_id?: string } } | null> {
  try {
    const res = await fetch(`${url}/v3/maintenance/status`, {
      method: "POST",
      body: "{}",
      signal: AbortSignal.timeout(1000),
    });
    return (await res.json()) as { leader?: string; header?: { member_id?: string } };
  } catch {
    return null;
  }
}

async function until(what: string, fn: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Start `size` members (1 or 3) and wait until the cluster accepts writes. */
export async function startEtcd(size = 3): Promise<EtcdCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-etcd-"));
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    const name = `e${i}`;
    members.push({
      name,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: path.join(dir, name),
      child: null,
      log: () => "",
    });
  }
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
  const launch = (m: EtcdMember): void => {
    const child = spawn(
      "etcd",
      [
        `--name=${m.name}`,
        `--data-dir=${m.dataDir}`,
        `--listen-client-urls=${m.clientUrl}`,
        `--advertise-client-urls=${m.clientUrl}`,
        `--listen-peer-urls=${m.peerUrl}`,
        `--initial-advertise-peer-urls=${m.peerUrl}`,
        `--initial-cluster=${initial}`,
        "--initial-cluster-state=new",
        `--initial-cluster-token=qrunner-test-${path.basename(dir)}`,
        // etcd's defaults, spelled out: a leader lost is replaced in about 1-2 s, within the nodes'
        // fence (half the test's 5 s lease)
        "--heartbeat-interval=100",
        "--election-timeout=1000",
        "--log-level=warn",
        "--logger=zap",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    child.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    m.child = child;
    m.log = () => out;
  };
  for (const m of members) launch(m);
  const exited = (m: EtcdMember): Promise<void> =>
    new Promise((resolve) => {
      const c = m.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) resolve();
      else c.once("exit", () => resolve());
    });
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => m.clientUrl),
    async leader() {
      for (const m of members) {
        if (!m.child || m.child.exitCode !== null || m.child.signalCode !== null) continue;
        const s = await status(m.clientUrl);
        if (!s?.leader) continue;
        for (const o of members) {
          if (!o.child || o.child.exitCode !== null || o.child.signalCode !== null) continue;
          const so = await status(o.clientUrl);
          if (so?.header?.member_id === s.leader) return o;
        }
      }
      return null;
    },
    async kill(m) {
      m.child?.kill("SIGKILL");
      await exited(m);
      m.child = null;
    },
    async restart(m) {
      launch(m);
      await until(`${m.name} to answer`, async () => (await status(m.clientUrl)) !== null, 15_000);
    },
    async healthy(endpoints = cluster.endpoints) {
      for (const url of endpoints) {
        try {
          const res = await fetch(`${url}/v3/kv/put`, {
            method: "POST",
            body: JSON.stringify({ key: Buffer.from("/health-check").toString("base64"), value: "" }),
            signal: AbortSignal.timeout(1500),
          });
          if (res.ok) return true;
        } catch {
          // next
        }
      }
      return false;
    },
    async stop() {
      for (const m of members) {
        m.child?.kill("SIGKILL");
        await exited(m);
        m.child = null;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await until("the etcd cluster to accept writes", () => cluster.healthy(), 30_000);
  } catch (err) {
    const logs = members.map((m) => `--- ${m.name}\n${m.log().slice(-2000)}`).join("\n");
    await cluster.stop();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
  return cluster;
}

export interface CutProxy {
  readonly url: string;
  /** drop every connection and let new ones hang unanswered (a network partition) */
  cut(): void;
  /** forward again */
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy on a loopback port to `target` (an http://host:port URL). */
export async function cutProxy(target: string): Promise<CutProxy> {
  const t = new URL(target);
  const port = await freePort();
  let cut = false;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    if (cut) return; // accepted and never answered: the peer waits until its own deadline
    const upstream = net.connect(Number(t.port), t.hostname);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
      // the connections held silent: closed, so that the client dials again at once
      for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
