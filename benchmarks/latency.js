// Latency at light load: one post every ~100 ms to a 1-member list, inject -> SMTP acceptance, p50/p99.
// The sink here is an smtp-server in this process, so that each message's acceptance is timed on the
// same clock as its injection (sink.py records only the first and last acceptance).
//
//   node benchmarks/latency.js [--quick] [--json] [--samples=100] [--interval=100]
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import { SMTPServer } from "smtp-server";
import { Switchboard } from "../dist/queue/switchboard.js";
import {
  QRUNNER,
  benchDir,
  emit,
  isMain,
  log,
  makePost,
  num,
  pct,
  sleep,
  startDaemon,
  table,
  target,
  targetsTable,
  waitQuiet,
} from "./lib.js";

const LIST = "lat@lists.example.com";
const MEMBER = "m0@example.com";

/** An SMTP sink that records Date.now() when each message's DATA is accepted, by Message-ID. */
async function timingSink() {
  const accepted = new Map();
  const waiters = new Map();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, cb) {
      const chunks = [];
      stream.on("data", (c) => chunks.push(c));
      stream.on("end", () => {
        const at = Date.now();
        const m = /^message-id:\s*(<[^>]*>)/im.exec(Buffer.concat(chunks).toString("latin1"));
        if (m) {
          accepted.set(m[1], at);
          waiters.get(m[1])?.(at);
        }
        cb();
      });
    },
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: server.server.address().port,
    /** resolves with the acceptance time of this Message-ID */
    when(id) {
      const at = accepted.get(id);
      return at !== undefined ? Promise.resolve(at) : new Promise((r) => waiters.set(id, r));
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

async function measure(daemon, sink, via, samples, interval) {
  const sb = await Switchboard.open({ root: daemon.qfiles, queue: "incoming" });
  const run = `${via}-${Date.now()}`;
  const pending = [];
  for (let i = 0; i < samples; i++) {
    const msg = makePost(i, { from: MEMBER, to: LIST, run });
    const id = `<bench-${i}-${run}@example.com>`;
    const t0 = Date.now();
    if (via === "enqueue")
      await sb.enqueue(msg, { sender: MEMBER, recipients: [LIST], to: LIST, list: LIST, kind: "post" });
    else
      await new Promise((resolve) => {
        const c = spawn(process.execPath, [QRUNNER, "inject", `--to=${LIST}`, "-C", daemon.cfg], {
          stdio: ["pipe", "ignore", "inherit"],
        });
        c.on("exit", resolve);
        c.stdin.end(msg);
      });
    const tInjected = Date.now();
    pending.push(
      sink
        .when(id)
        .then((at) => ({ i, total: at - t0, afterQueued: at - tInjected, inject: tInjected - t0 })),
    );
    const wait = interval - (Date.now() - t0);
    if (wait > 0) await sleep(wait);
  }
  const timeout = sleep(30_000).then(() => null);
  const got = await Promise.race([Promise.all(pending), timeout]);
  sb.close();
  if (!got) throw new Error(`latency (${via}): not every message arrived within 30 s`);
  return got;
}

export async function main() {
  const samples = num("samples", 100, 30);
  const interval = num("interval", 100);
  const { dir, cleanup } = benchDir("qrunner-bench-lat-");
  const sink = await timingSink();
  let daemon;
  try {
    daemon = await startDaemon(dir, {
      hosts: [{ host: "127.0.0.1", port: sink.port }],
      lists: [{ address: LIST, members: [MEMBER] }],
    });
    await sleep(500);
    const machine = await waitQuiet();
    const R = {};
    for (const via of ["enqueue", "inject"]) {
      const xs = await measure(daemon, sink, via, samples, interval);
      const totals = xs.map((x) => x.total);
      const afterQueued = xs.map((x) => x.afterQueued);
      R[via] = {
        samples: xs.length,
        p50_ms: pct(totals, 50),
        p90_ms: pct(totals, 90),
        p99_ms: pct(totals, 99),
        max_ms: pct(totals, 100),
        min_ms: pct(totals, 0),
        inject_p50_ms: pct(
          xs.map((x) => x.inject),
          50,
        ),
        queued_to_accepted_p50_ms: pct(afterQueued, 50),
        queued_to_accepted_p99_ms: pct(afterQueued, 99),
        // which samples were slowest: the first ones pay for a cold start (connection, JIT)
        slowest: [...xs]
          .sort((a, b) => b.total - a.total)
          .slice(0, 3)
          .map((x) => ({ sample: x.i, ms: x.total })),
      };
      log(
        `latency via ${via}: p50 ${R[via].p50_ms} ms, p99 ${R[via].p99_ms} ms; slowest samples ${R[via].slowest.map((x) => `#${x.sample} ${x.ms} ms`).join(", ")}`,
      );
    }
    table(
      `Latency at light load: one post every ${interval} ms to a 1-member list, inject -> SMTP acceptance (${samples} samples each)`,
      [
        "injected by",
        "min ms",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "inject part p50",
        "queued->accepted p50 / p99",
      ],
      Object.entries(R).map(([via, r]) => [
        via === "enqueue" ? "Switchboard.enqueue in-process" : "`qrunner inject` process",
        r.min_ms,
        r.p50_ms,
        r.p90_ms,
        r.p99_ms,
        r.max_ms,
        r.inject_p50_ms,
        `${r.queued_to_accepted_p50_ms} / ${r.queued_to_accepted_p99_ms}`,
      ]),
    );
    const targets = [
      target("p50 latency, enqueue in-process", R.enqueue.p50_ms, "<=", 20, " ms"),
      target("p99 latency, enqueue in-process", R.enqueue.p99_ms, "<=", 20, " ms", { info: true }),
      target("p50 latency, qrunner inject (process start included)", R.inject.p50_ms, "<=", 20, " ms", {
        info: true,
      }),
    ];
    targetsTable("Latency: targets", targets);
    emit("latency", { samples, interval_ms: interval, machine, ...R, targets });
  } finally {
    await daemon?.stop();
    await sink.close();
    cleanup();
  }
}

if (isMain(import.meta.url)) await main();
