/**
 * The metrics registry and its sources, against real queue, host-health and list-state files: worker
 * heartbeats become monotonic counters (across worker restarts), delivery deltas and latencies are
 * counted, queue depth and age are split by the slices the workers run, and the endpoint serves it.
 */
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { HostHealthStore } from "../../src/delivery/index.js";
import { HeldStore } from "../../src/lists/held.js";
import { loadAll } from "../../src/lists/load.js";
import { ListStateStore } from "../../src/lists/state.js";
import { QrunnerMetrics } from "../../src/metrics/metrics.js";
import { MetricsServer } from "../../src/metrics/server.js";
import type { WorkerView } from "../../src/metrics/sources.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { inSlice, parseSlice } from "../../src/queue/slice.js";
import type { WorkerMessage } from "../../src/protocol/worker.js";
import { silentLogger } from "../../src/util/log.js";
import { makeSite, message, type Site } from "../helpers/site.js";
import { parseExposition, type Exposition } from "./prom-text.js";

type Heartbeat = Extract<WorkerMessage, { type: "heartbeat" }>;

let site: Site | undefined;
let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  await site?.cleanup();
  site = undefined;
});

const DEV = {
  address: "dev@example.org",
  members: ["a@example.net", "b@example.net", "c@example.net", "d@example.net"],
};

function beat(handled: number, failed: number, extra: Partial<Heartbeat> = {}): Heartbeat {
  return { type: "heartbeat", handled, failed, lastProgress: Date.now(), due: 0, inHand: 0, ...extra };
}

async function setup(
  workers: WorkerView[],
  smtp = "smtp: { hosts: [{ host: 127.0.0.1, port: 2525, name: mx1 }], fallback: [{ host: 127.0.0.1, port: 2526 }] }\n",
) {
  site = await makeSite(smtp, [DEV]);
  const settings = await loadAll(site.configFile);
  const metrics = new QrunnerMetrics({
    settings: () => settings,
    workers: () => workers,
    cacheMs: 0,
    logger: silentLogger(),
  });
  const scrape = async (): Promise<Exposition> => parseExposition((await metrics.exposition()).body);
  return { site, settings, metrics, scrape };
}

describe("metrics", () => {
  it("turns heartbeats into counters that only go up, across worker restarts", async () => {
    const { metrics, scrape } = await setup([]);
    const w = { key: "incoming 0/1", runner: "incoming", slice: "0/1", pid: 100 };
    metrics.heartbeat(w, beat(0, 0));
    let m = await scrape();
    expect(m.get("qrunner_entries_handled_total", { runner: "incoming", slice: "0/1" })).toBe(0);
    expect(m.types.get("qrunner_entries_handled_total")).toBe("counter");
    metrics.heartbeat(w, beat(5, 1));
    metrics.heartbeat(w, beat(7, 1));
    // the worker restarts: its own counts start over, the metric does not
    metrics.heartbeat({ ...w, pid: 101 }, beat(2, 0));
    m = await scrape();
    expect(m.get("qrunner_entries_handled_total", { runner: "incoming", slice: "0/1" })).toBe(9);
    expect(m.get("qrunner_entries_failed_total", { runner: "incoming", slice: "0/1" })).toBe(1);
  });

  it("counts deliveries and failures per host and observes latencies per accepted recipient", async () => {
    const { metrics, scrape } = await setup([]);
    const w = { key: "outgoing 0/1", runner: "outgoing", slice: "0/1", pid: 7 };
    metrics.heartbeat(
      w,
      beat(1, 0, {
        deliveries: { mx1: { accepted: 3, temporary: 1, permanent: 0 } },
        latencies: [
          [0.3, 2],
          [42, 1],
        ],
      }),
    );
    metrics.heartbeat(
      w,
      beat(2, 0, {
        deliveries: {
          mx1: { accepted: 1, temporary: 0, permanent: 2 },
          "mx2:25": { accepted: 5, temporary: 0, permanent: 0 },
        },
      }),
    );
    const m = await scrape();
    expect(m.get("qrunner_deliveries_total", { host: "mx1" })).toBe(4);
    expect(m.get("qrunner_deliveries_total", { host: "mx2:25" })).toBe(5);
    expect(m.get("qrunner_delivery_failures_total", { host: "mx1", kind: "temporary" })).toBe(1);
    expect(m.get("qrunner_delivery_failures_total", { host: "mx1", kind: "permanent" })).toBe(2);
    expect(m.types.get("qrunner_delivery_latency_seconds")).toBe("histogram");
    expect(m.get("qrunner_delivery_latency_seconds_count", { runner: "outgoing" })).toBe(3);
    expect(m.get("qrunner_delivery_latency_seconds_sum", { runner: "outgoing" })).toBeCloseTo(42.6, 5);
    expect(m.get("qrunner_delivery_latency_seconds_bucket", { runner: "outgoing", le: "0.5" })).toBe(2);
    expect(m.get("qrunner_delivery_latency_seconds_bucket", { runner: "outgoing", le: "60" })).toBe(3);
  });

  it("splits queue depth, work in progress and age by the slices of each queue's workers", async () => {
    const workers: WorkerView[] = [
      { runner: "incoming", slice: "0/2", state: "ready", restarts: 0 },
      { runner: "incoming", slice: "1/2", state: "ready", restarts: 3 },
      { runner: "outgoing", slice: "0/1", state: "backoff", restarts: 1 },
    ];
    const { site, scrape } = await setup(workers);
    const incoming = await Switchboard.open({ root: site.qfiles, queue: "incoming" });
    const ids = await incoming.enqueueMany(
      Array.from({ length: 40 }, (_, i) => ({
        message: message({ subject: `m${i}` }),
        meta: { sender: "", recipients: ["dev@example.org"] },
      })),
    );
    const taken = await incoming.dequeue();
    expect(taken).not.toBeNull();
    const shunt = await Switchboard.open({ root: site.qfiles, queue: "shunt" });
    await shunt.enqueue(
      message(),
      { sender: "", recipients: ["x@example.net"] },
      { notBefore: Date.now() - 3_600_000 },
    );
    const backoff = await Switchboard.open({ root: site.qfiles, queue: "backoff" });
    await backoff.enqueue(
      message(),
      { sender: "", recipients: ["x@example.net"] },
      { notBefore: Date.now() + 3_600_000 },
    );

    const m = await scrape();
    const inSlice0 = ids.filter((id) => inSlice(parseSlice("0/2"), id));
    const wip0 = inSlice(parseSlice("0/2"), taken!.id) ? 1 : 0;
    expect(m.get("qrunner_queue_entries", { queue: "incoming", slice: "0/2" })).toBe(inSlice0.length - wip0);
    expect(m.get("qrunner_queue_entries", { queue: "incoming", slice: "1/2" })).toBe(
      40 - inSlice0.length - (1 - wip0),
    );
    expect(m.sum("qrunner_queue_in_progress", { queue: "incoming" })).toBe(1);
    expect(m.sum("qrunner_queue_entries", { queue: "incoming" })).toBe(39);
    expect(m.get("qrunner_queue_entries", { queue: "outgoing", slice: "0/1" })).toBe(0);
    expect(m.get("qrunner_queue_oldest_age_seconds", { queue: "outgoing", slice: "0/1" })).toBe(0);
    // queues without a runner are one slice; an entry not yet due has no age
    expect(m.get("qrunner_queue_oldest_age_seconds", { queue: "shunt", slice: "0/1" })).toBeGreaterThan(3500);
    expect(m.get("qrunner_queue_entries", { queue: "backoff", slice: "0/1" })).toBe(1);
    expect(m.get("qrunner_queue_oldest_age_seconds", { queue: "backoff", slice: "0/1" })).toBe(0);
    expect(m.get("qrunner_worker_ready", { runner: "incoming", slice: "1/2" })).toBe(1);
    expect(m.get("qrunner_worker_ready", { runner: "outgoing", slice: "0/1" })).toBe(0);
    expect(m.get("qrunner_worker_restarts_total", { runner: "incoming", slice: "1/2" })).toBe(3);
    // a replaced worker position counts from 0 again: the counter keeps adding
    workers[1] = { ...workers[1]!, restarts: 1 };
    expect((await scrape()).get("qrunner_worker_restarts_total", { runner: "incoming", slice: "1/2" })).toBe(
      4,
    );
    incoming.close();
    shunt.close();
    backoff.close();
  });

  it("reports host state, held posts, bouncing and disabled members per list", async () => {
    const { site, settings, scrape } = await setup([]);
    const state = settings.config.state;
    let m = await scrape();
    expect(m.get("qrunner_host_up", { host: "mx1", role: "primary" })).toBe(1);
    expect(m.get("qrunner_host_up", { host: "127.0.0.1:2526", role: "fallback" })).toBe(1);
    expect(m.get("qrunner_list_held_posts", { list: "dev@example.org" })).toBe(0);
    await new HostHealthStore(state).markFailure("mx1", "connection refused");
    const held = new HeldStore(state, "dev@example.org");
    await held.hold(message(), { sender: "x@example.com", reason: "post from a non-member" });
    await held.hold(message(), { sender: "y@example.com", reason: "post from a non-member" });
    await new ListStateStore(state, "dev@example.org").update((s) => {
      s.members["a@example.net"] = { score: 2, lastBounce: Date.now() };
      s.members["b@example.net"] = {
        score: 5,
        lastBounce: Date.now(),
        disabled: { reason: "bounces", at: Date.now() },
      };
      s.members["c@example.net"] = { score: 0, disabled: { reason: "by owner", at: Date.now() } };
      // not a member any more: not counted
      s.members["gone@example.net"] = { score: 3, lastBounce: Date.now() };
      s.unrecognisedBounces = 4;
    });
    m = await scrape();
    expect(m.get("qrunner_host_up", { host: "mx1", role: "primary" })).toBe(0);
    expect(m.get("qrunner_list_held_posts", { list: "dev@example.org" })).toBe(2);
    expect(m.get("qrunner_list_bouncing_members", { list: "dev@example.org" })).toBe(1);
    expect(m.get("qrunner_list_disabled_members", { list: "dev@example.org", reason: "bounces" })).toBe(1);
    expect(m.get("qrunner_list_disabled_members", { list: "dev@example.org", reason: "by owner" })).toBe(1);
    expect(m.get("qrunner_list_unrecognised_bounces", { list: "dev@example.org" })).toBe(4);
    expect(site.dir).toBeTruthy();
  });

  it("serves the exposition on GET /metrics and nothing else", async () => {
    const { metrics } = await setup([]);
    metrics.lmtpOutcome("queued", 2);
    server = await MetricsServer.start({ listen: "127.0.0.1:0", metrics, logger: silentLogger() });
    const get = (p: string, method = "GET"): Promise<{ status: number; type: string; body: string }> =>
      new Promise((resolve, reject) => {
        const req = http.request(
          { host: "127.0.0.1", port: server!.address.port, path: p, method },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (body += d));
            res.on("end", () =>
              resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }),
            );
          },
        );
        req.on("error", reject);
        req.end();
      });
    const ok = await get("/metrics");
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parseExposition(ok.body).get("qrunner_lmtp_recipients_total", { result: "queued" })).toBe(2);
    // no process_ or nodejs_ defaults: the registry is qrunner's own
    expect(parseExposition(ok.body).series.every((s) => s.name.startsWith("qrunner_"))).toBe(true);
    expect((await get("/")).status).toBe(404);
    expect((await get("/metrics", "POST")).status).toBe(405);
    await server.close();
    await server.close();
  });
});
