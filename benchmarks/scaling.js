// Scaling of the outgoing runner: throughput with 1, 2 and 4 outgoing workers against one sink
// (runners.outgoing.instances: N), and with one of two hosts dead (a port with nothing listening)
// against the surviving host alone. Entries are queued straight into `outgoing` (single-recipient,
// 3 KB) by enqueueMany while the daemon runs; t0 = first enqueue, end = the sink's last_ts.
//
//   node benchmarks/scaling.js [--quick] [--json] [--msgs=2000] [--rounds=2] [--workers=1,2,4]
//        [--runners=JSON: other runner settings, e.g. {"backoff":{"concurrency":8}}]
import net from "node:net";
import { Switchboard } from "../dist/queue/switchboard.js";
import {
  arg,
  benchDir,
  cpuDelta,
  emit,
  fmt,
  isMain,
  log,
  makePost,
  median,
  num,
  queueCounts,
  sleep,
  spread,
  startDaemon,
  startSink,
  table,
  target,
  targetsTable,
  waitQuiet,
} from "./lib.js";

/** A loopback port with nothing listening on it. */
async function deadPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

async function run({ label, msgs, hosts, outgoing, dead = false }) {
  const { dir, cleanup } = benchDir("qrunner-bench-scale-");
  const sink = await startSink(dir, { expect: msgs });
  let daemon;
  try {
    const live = { host: "127.0.0.1", port: sink.port, name: "live" };
    const hostList = dead
      ? [live, { host: "127.0.0.1", port: await deadPort(), name: "dead", connect_timeout: "2s" }]
      : [live];
    daemon = await startDaemon(dir, {
      hosts: hostList.slice(0, hosts),
      runners: { ...JSON.parse(arg("runners", "{}")), outgoing },
    });
    const run = `${process.pid}-${Date.now()}`;
    const items = Array.from({ length: msgs }, (_, i) => ({
      message: makePost(i, { from: "sender@example.com", to: `r${i}@example.net`, run }),
      meta: { sender: "sender@example.com", recipients: [`r${i}@example.net`], kind: "post" },
    }));
    await sleep(300);
    const machine = await waitQuiet();
    const cpu0 = daemon.cpu();
    const t0 = Date.now() / 1000;
    const sb = await Switchboard.open({ root: daemon.qfiles, queue: "outgoing" });
    for (let i = 0; i < msgs; i += 100) await sb.enqueueMany(items.slice(i, i + 100));
    const tq = Date.now() / 1000;
    let s = await sink.waitFor(msgs, Number(arg("timeout", 300)) * 1000);
    await sleep(300);
    s = await sink.stats(true);
    const cpu1 = daemon.cpu();
    const elapsed = s.last_ts ? s.last_ts - t0 : null;
    const res = {
      label,
      msgs,
      hosts,
      outgoing,
      dead,
      ...machine,
      delivered: s.recipients,
      dup_pairs: s.dup_pairs,
      sink_connections: s.connections,
      enqueue_s: Math.round((tq - t0) * 1000) / 1000,
      elapsed_s: elapsed && Math.round(elapsed * 1000) / 1000,
      msgs_per_s: elapsed && s.recipients >= msgs ? Math.round((msgs / elapsed) * 10) / 10 : null,
      cpu_s: cpuDelta(cpu0, cpu1),
      queues_left: queueCounts(daemon.qfiles),
    };
    log(
      `${label}: ${s.recipients}/${msgs} in ${fmt(elapsed, 2)} s = ${fmt(res.msgs_per_s, 0)} msgs/s, ${s.connections} connections`,
    );
    return res;
  } finally {
    await daemon?.stop();
    await sink.stop();
    cleanup();
  }
}

export async function main() {
  const msgs = num("msgs", 2000, 500);
  const rounds = num("rounds", 2, 1);
  const counts = arg("workers", "1,2,4").split(",").map(Number);
  const cases = [
    ...counts.map((n) => ({
      key: `w${n}`,
      label: `${n} outgoing worker(s), 1 host`,
      hosts: 1,
      outgoing: { instances: n },
    })),
    { key: "alone", label: "auto, the surviving host alone", hosts: 1, outgoing: { instances: "auto" } },
    { key: "dead", label: "auto, 2 hosts, one dead", hosts: 2, outgoing: { instances: "auto" }, dead: true },
  ];
  const R = Object.fromEntries(cases.map((c) => [c.key, []]));
  for (let r = 0; r < rounds; r++) {
    log(`scaling round ${r + 1}/${rounds}`);
    for (const c of cases) R[c.key].push(await run({ ...c, msgs }));
  }
  const rate = (k) => R[k].map((x) => x.msgs_per_s ?? 0);
  const base = median(rate(`w${counts[0]}`));
  table(
    `Outgoing throughput, ${msgs} single-recipient 3 KB messages queued into outgoing (median (min..max) of ${rounds})`,
    ["case", "msgs/s", "vs first", "sink connections", "cpu s (daemon)", "left in queues"],
    cases.map((c) => [
      c.label,
      spread(rate(c.key), 0),
      fmt(median(rate(c.key)) / base),
      R[c.key].map((x) => x.sink_connections).join(" "),
      spread(
        R[c.key].map((x) => x.cpu_s.total),
        2,
      ),
      JSON.stringify(R[c.key].at(-1).queues_left),
    ]),
  );
  const deadRatio = median(rate("dead")) / median(rate("alone"));
  const targets = [
    target("one of two hosts dead vs the surviving host alone", deadRatio, ">=", 0.9, "x"),
    ...counts
      .slice(1)
      .map((n) =>
        target(
          `${n} outgoing workers vs ${counts[0]} (2 cores)`,
          median(rate(`w${n}`)) / base,
          ">=",
          1,
          "x",
          { info: true },
        ),
      ),
  ];
  targetsTable("Scaling: targets", targets);
  emit("scaling", { msgs, rounds, runs: R, dead_ratio: deadRatio, targets });
}

if (isMain(import.meta.url)) await main();
