/**
 * Shared pieces of the delivery end-to-end tests: a site whose `smtp.hosts` are recording sinks, real
 * worker processes (`qrunner start --runner=... --slice=...`), bulk enqueueing of outgoing entries with
 * known Message-IDs, and the checks every test makes (each (Message-ID, recipient) delivered exactly
 * once across all sinks, queues drained).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { hostFileName } from "../../src/delivery/health.js";
import { listQueue, type EntrySummary } from "../../src/queue/inspect.js";
import { queueStats } from "../../src/queue/stats.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { startSink, type Sink } from "../helpers/smtp-sink.js";
import {
  logLines,
  makeSite,
  message,
  spawnCli,
  waitFor,
  type ListSpec,
  type Running,
  type Site,
} from "../helpers/site.js";

export interface HostSpec {
  name: string;
  weight?: number;
}

/** The two weighted primaries most tests use: a takes three quarters of the slices, b one. */
export const WEIGHTED: HostSpec[] = [
  { name: "a", weight: 3 },
  { name: "b", weight: 1 },
];

export interface DeliverySite {
  site: Site;
  /** sinks by host name, primaries then fallbacks */
  sinks: Map<string, Sink>;
  sink(name: string): Sink;
  workers: Worker[];
  /** start one worker and wait until it says it is ready */
  start(runner: string, slice?: string): Promise<Worker>;
  /** SIGTERM every worker; each must exit 0 */
  stop(): Promise<void>;
  /** every JSON log line of every worker so far */
  logs(): Record<string, unknown>[];
  cleanup(): Promise<void>;
}

export interface Worker extends Running {
  runner: string;
  slice: string;
}

export interface SiteOptions {
  hosts: HostSpec[];
  fallback?: HostSpec[];
  /** extra YAML under `smtp:` (indented two spaces), e.g. "  max_recipients: 7\n" */
  smtp?: string;
  /** the `backoff:` section's body, flow style */
  backoff?: string;
  lists?: ListSpec[];
}

/**
 * Short waits everywhere: probes every 500 ms at most, retries after 200 ms, no jitter. Each host gets
 * 16 pooled connections (and outgoing workers 32 entries in hand): a nodemailer transaction costs a
 * delayed ACK (~40 ms) on loopback, so throughput scales with connections (see docs/demo.md).
 */
export async function deliverySite(opts: SiteOptions): Promise<DeliverySite> {
  const sinks = new Map<string, Sink>();
  for (const h of [...opts.hosts, ...(opts.fallback ?? [])]) sinks.set(h.name, await startSink());
  const hostLine = (h: HostSpec, weighted: boolean): string =>
    `    - { name: ${h.name}, host: 127.0.0.1, port: ${sinks.get(h.name)?.port ?? 0}${weighted ? `, weight: ${h.weight ?? 1}` : ""}, connect_timeout: 2s, timeout: 10s, pool_size: 16 }\n`;
  const yaml =
    "runners:\n" +
    "  outgoing: { instances: auto, sleep: 200ms, concurrency: 32 }\n" +
    "  backoff: { sleep: 200ms, concurrency: 8 }\n" +
    "  incoming: { sleep: 200ms }\n" +
    "smtp:\n" +
    "  hosts:\n" +
    opts.hosts.map((h) => hostLine(h, true)).join("") +
    (opts.fallback?.length ? "  fallback:\n" + opts.fallback.map((h) => hostLine(h, false)).join("") : "") +
    "  probe_max: 500ms\n" +
    (opts.smtp ?? "") +
    `backoff: { ${opts.backoff ?? "schedule: [200ms], max_age: 1h, jitter: 0"} }\n`;
  const site = await makeSite(yaml, opts.lists ?? []);
  const workers: Worker[] = [];
  const stopped: Worker[] = [];
  const ds: DeliverySite = {
    site,
    sinks,
    workers,
    sink(name) {
      const s = sinks.get(name);
      if (!s) throw new Error(`no sink ${name}`);
      return s;
    },
    async start(runner, slice = "0/1") {
      const r = spawnCli(["start", "-C", site.configFile, `--runner=${runner}`, `--slice=${slice}`]);
      const w: Worker = Object.assign(r, { runner, slice });
      workers.push(w);
      await waitFor(`${runner} ${slice} to be ready`, () => {
        if (r.child.exitCode !== null)
          throw new Error(`${runner} ${slice} exited ${r.child.exitCode}: ${r.stderr()}`);
        return r.stdout().includes('"msg":"worker ready"');
      });
      return w;
    },
    async stop() {
      const running = workers.splice(0);
      for (const w of running) w.child.kill("SIGTERM");
      for (const w of running) {
        const { code } = await w.exited;
        if (code !== 0) throw new Error(`${w.runner} ${w.slice} exited ${code}: ${w.stderr()}`);
      }
      stopped.push(...running);
    },
    logs: () => [...stopped, ...workers].flatMap((w) => logLines(w.stdout())),
    async cleanup() {
      for (const w of workers) w.child.kill("SIGKILL");
      await Promise.all(workers.map((w) => w.exited));
      for (const s of sinks.values()) await s.close();
      await site.cleanup();
    },
  };
  return ds;
}

export interface Sent {
  /** "Message-ID recipient" keys, as the sinks record them */
  keys: string[];
  /** entry sha1s, in order */
  ids: string[];
  /** Message-IDs, in order (index i belongs to ids[i]) */
  messageIds: string[];
}

/**
 * Queue `n` entries into `outgoing`, message i with Message-ID `<prefix-i@test.example>` and the
 * recipients `rcpts(i)` (default one: `prefix-i@example.net`), as the incoming runner would.
 */
export async function enqueueOutgoing(
  site: Site,
  prefix: string,
  n: number,
  rcpts: (i: number) => string[] = (i) => [`${prefix}-${i}@example.net`],
  list = "dev@example.org",
): Promise<Sent> {
  const q = await Switchboard.open({ root: site.qfiles, queue: "outgoing" });
  const sent: Sent = { keys: [], ids: [], messageIds: [] };
  try {
    for (let start = 0; start < n; start += 500) {
      const items = [];
      for (let i = start; i < Math.min(n, start + 500); i++) {
        const mid = `<${prefix}-${i}@test.example>`;
        const to = rcpts(i);
        sent.messageIds.push(mid);
        for (const r of to) sent.keys.push(`${mid} ${r}`);
        items.push({
          message: message({ id: mid, subject: `${prefix} ${i}` }),
          meta: { sender: "dev-bounces@example.org", recipients: to, list, kind: "post" },
        });
      }
      sent.ids.push(...(await q.enqueueMany(items)));
    }
  } finally {
    q.close();
  }
  return sent;
}

/** Every (Message-ID, recipient) recorded by any sink, with how often. */
export function allDeliveries(sinks: Iterable<Sink>): Map<string, number> {
  const all = new Map<string, number>();
  for (const s of sinks) for (const [k, n] of s.deliveries()) all.set(k, (all.get(k) ?? 0) + n);
  return all;
}

/** Wait until every key has been recorded by some sink. */
export async function waitDelivered(
  sinks: Iterable<Sink>,
  keys: readonly string[],
  timeoutMs = 45_000,
): Promise<void> {
  const list = [...sinks];
  await waitFor(
    `${keys.length} deliveries`,
    () => {
      const all = allDeliveries(list);
      return keys.every((k) => all.has(k));
    },
    timeoutMs,
  );
}

/** Keys delivered other than exactly once (missing, or more than once). */
export function notExactlyOnce(sinks: Iterable<Sink>, keys: readonly string[]): string[] {
  const all = allDeliveries(sinks);
  return keys.filter((k) => all.get(k) !== 1).map((k) => `${k} x${all.get(k) ?? 0}`);
}

/** Wait until these queues hold nothing, queued or in progress. */
export async function waitDrained(
  site: Site,
  queues: readonly string[] = ["outgoing", "backoff"],
  timeoutMs = 45_000,
): Promise<void> {
  await waitFor(
    `${queues.join(", ")} to drain`,
    async () => {
      for (const q of queues) {
        const s = await queueStats(site.qfiles, q);
        if (s.depth + s.inProgress > 0) return false;
      }
      return true;
    },
    timeoutMs,
  );
}

/** A host's shared health record (state "up" when it has none). */
export async function hostState(
  site: Site,
  name: string,
): Promise<{ state: string; nextProbe: number | null }> {
  try {
    const r = JSON.parse(await readFile(path.join(site.state, "hosts", hostFileName(name)), "utf8")) as {
      state: string;
      nextProbe: number | null;
    };
    return r;
  } catch {
    return { state: "up", nextProbe: null };
  }
}

/** The entries of a queue with their metadata. */
export async function entries(site: Site, queue: string): Promise<EntrySummary[]> {
  return listQueue(site.qfiles, queue);
}

/** Log lines with this message (and, when given, this host). */
export function linesWith(
  logs: Record<string, unknown>[],
  msg: string,
  host?: string,
): Record<string, unknown>[] {
  return logs.filter((l) => l["msg"] === msg && (host === undefined || l["host"] === host));
}

export const CANNOT_REACH = "cannot reach host; its mail goes to backoff";
export const REACHABLE_AGAIN = "host is reachable again";
