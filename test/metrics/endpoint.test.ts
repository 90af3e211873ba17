/**
 * The real master with `metrics.listen` and `intake.lmtp`: scrape, send mail through to a recording
 * SMTP server (by `qrunner inject` and by LMTP), scrape again and find the numbers moving.
 */
import nodemailer from "nodemailer";
import { describe, expect, it } from "vitest";
import { logLines, message, runCli, waitFor, type Running } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";
import { parseExposition, type Exposition } from "./prom-text.js";

const t = testScope();

/** The address a listener logged ("LMTP listening", "metrics listening"), once it has. */
async function listening(run: Running, msg: string): Promise<number> {
  let port = 0;
  await waitFor(`"${msg}" in the master's log`, () => {
    const line = logLines(run.stdout()).find((l) => l["msg"] === msg);
    port = Number(
      String(line?.["address"] ?? "")
        .split(":")
        .pop(),
    );
    return port > 0;
  });
  return port;
}

async function scrape(port: number): Promise<Exposition> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

describe("metrics endpoint of the master", () => {
  it("is scraped, mail goes through, and the counters, depths and latencies move", async () => {
    const sink = await t.sink();
    const site = await t.site(
      [
        `smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port}, name: sink }] }`,
        `intake: { lmtp: "127.0.0.1:0" }`,
        `metrics: { listen: "127.0.0.1:0" }`,
        "",
      ].join("\n"),
      [
        {
          address: "dev@example.org",
          members: ["bob@example.com", "carol@example.net"],
          extra: "archive: false\nnonmembers: accept",
        },
      ],
    );
    const master = t.spawn(["start", "-C", site.configFile]);
    const metricsPort = await listening(master, "metrics listening");
    const lmtpPort = await listening(master, "LMTP listening");
    const run = master;
    await waitFor("all workers ready", () =>
      logLines(run.stdout()).some((l) => l["msg"] === "all workers ready"),
    );

    const before = await scrape(metricsPort);
    expect(before.get("qrunner_queue_entries", { queue: "incoming", slice: "0/1" })).toBe(0);
    expect(before.get("qrunner_queue_oldest_age_seconds", { queue: "backoff", slice: "0/1" })).toBe(0);
    expect(before.get("qrunner_host_up", { host: "sink", role: "primary" })).toBe(1);
    expect(before.get("qrunner_worker_ready", { runner: "outgoing", slice: "0/1:1" })).toBe(1);
    expect(before.get("qrunner_worker_restarts_total", { runner: "incoming", slice: "0/1" })).toBe(0);
    expect(before.sum("qrunner_deliveries_total")).toBe(0);
    const handledBefore = before.sum("qrunner_entries_handled_total", { runner: "incoming" });

    for (const i of [1, 2]) {
      const r = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
        input: message({ id: `<metrics-${i}@test.example>` }),
      });
      expect(r.code, r.stderr).toBe(0);
    }
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: lmtpPort,
      lmtp: true,
      ignoreTLS: true,
    });
    try {
      const info = await transport.sendMail({
        envelope: { from: "alice@example.net", to: ["dev@example.org", "nobody@example.org"] },
        raw: message({ id: "<metrics-lmtp@test.example>" }),
      });
      expect(info.accepted).toEqual(["dev@example.org"]);
    } finally {
      transport.close();
    }
    // three posts to two members
    await sink.waitFor(6, 20_000);

    let after = before;
    // each worker reports on its own heartbeat (every second)
    await waitFor("the deliveries and handled entries in the metrics", async () => {
      after = await scrape(metricsPort);
      return (
        after.sum("qrunner_deliveries_total", { host: "sink" }) >= 6 &&
        after.sum("qrunner_entries_handled_total", { runner: "incoming" }) - handledBefore >= 3 &&
        after.sum("qrunner_entries_handled_total", { runner: "outgoing" }) >= 3
      );
    });
    expect(after.get("qrunner_deliveries_total", { host: "sink" })).toBe(6);
    expect(after.sum("qrunner_entries_failed_total")).toBe(0);
    expect(after.get("qrunner_delivery_latency_seconds_count", { runner: "outgoing" })).toBe(6);
    expect(after.get("qrunner_delivery_latency_seconds_bucket", { runner: "outgoing", le: "+Inf" })).toBe(6);
    expect(after.get("qrunner_lmtp_recipients_total", { result: "queued" })).toBe(1);
    expect(after.get("qrunner_lmtp_recipients_total", { result: "unknown" })).toBe(1);
    for (const q of ["incoming", "outgoing", "bounce", "command", "archive", "backoff", "shunt", "bad"])
      expect(after.sum("qrunner_queue_entries", { queue: q }), q).toBe(0);
    expect(after.get("qrunner_list_held_posts", { list: "dev@example.org" })).toBe(0);

    master.child.kill("SIGTERM");
    const { code } = await master.exited;
    expect(code).toBe(0);
    // both listeners are gone with the master
    await expect(fetch(`http://127.0.0.1:${metricsPort}/metrics`)).rejects.toThrow();
  });

  it("refuses to start when its metrics address is taken, naming it", async () => {
    const site = await t.site(`metrics: { listen: "127.0.0.1:0" }\n`, []);
    const first = t.spawn(["start", "-C", site.configFile]);
    const port = await listening(first, "metrics listening");
    const other = await t.site(`metrics: { listen: "127.0.0.1:${port}" }\n`, []);
    const r = await runCli(["start", "-C", other.configFile]);
    expect(r.code).toBe(1);
    const fatal = logLines(r.stdout).find((l) => l["level"] === "fatal");
    expect(String(fatal?.["err"])).toMatch(
      new RegExp(`cannot listen for metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
    );
  });
});
