// Cluster mode on etcd: (1) the delivery rate of one node with cluster mode on (a one-member etcd
// started here) against the same daemon without a `cluster:` section, side by side; (2) takeover: two
// nodes on one qfiles, node a SIGKILLed (master and workers), then entries queued into a's former slices:
// how long until etcd shows node b holding every slice, and until the first of those entries reaches
// the sink. Target: the first delivery within the lease TTL + 5 s.
//
//   node benchmarks/cluster.js [--quick] [--json] [--msgs=2000] [--rounds=2] [--lease=5]
//        [--part=rate|takeover] (one of the two only) [--keep] (keep the directories and logs)
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { Etcd3 } from "etcd3";
import { Switchboard } from "../dist/queue/switchboard.js";
import { sliceOf } from "../dist/queue/slice.js";
import {
  QRUNNER,
  arg,
  benchDir,
  childrenOf,
  emit,
  fmt,
  isMain,
  log,
  makePost,
  median,
  num,
  sleep,
  spread,
  startDaemon,
  startSink,
  table,
  target,
  targetsTable,
  waitQuiet,
} from "./lib.js";

const SLICES = 16;

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A one-member etcd in dir/etcd on loopback ports; resolves once it takes writes. */
async function startEtcd(dir) {
  const client = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const fd = openSync(path.join(dir, "etcd.log"), "w");
  const child = spawn(
    "etcd",
    [
      "--name=b0",
      `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=b0=${peer}`,
      "--log-level=warn",
      "--logger=zap",
    ],
    { stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  const etcd = new Etcd3({ hosts: [client] });
  const t0 = Date.now();
  for (;;) {
    try {
      await etcd.put("/bench-ready").value("1");
      break;
    } catch (err) {
      if (Date.now() - t0 > 30_000) throw new Error(`etcd did not start: ${err}`);
      await sleep(100);
    }
  }
  return {
    url: client,
    client: etcd,
    async stop() {
      etcd.close();
      child.kill("SIGKILL");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
    },
  };
}

function clusterYaml(node, etcdUrl, prefix, lease) {
  return `cluster: { node: ${node}, slices: ${SLICES}, lease: ${lease}s, etcd: { endpoints: [${etcdUrl}], prefix: "${prefix}" } }`;
}

/** One rate run: `msgs` single-recipient entries queued into outgoing; msgs/s at the sink. */
async function rateRun({ label, msgs, cluster, etcd }) {
  const { dir, cleanup } = benchDir("qrunner-bench-cluster-");
  const sink = await startSink(dir, { expect: msgs });
  let daemon;
  try {
    const extra = cluster ? clusterYaml("solo", etcd.url, `/bench-${process.pid}-${Date.now()}/`, 5) : "";
    daemon = await startDaemon(dir, {
      hosts: [{ host: "127.0.0.1", port: sink.port }],
      runners: { outgoing: { instances: 1, concurrency: 8 } },
      extra,
    });
    const run = `${process.pid}-${Date.now()}`;
    const items = Array.from({ length: msgs }, (_, i) => ({
      message: makePost(i, { from: "sender@example.com", to: `r${i}@example.net`, run }),
      meta: { sender: "sender@example.com", recipients: [`r${i}@example.net`], kind: "post" },
    }));
    await sleep(300);
    const machine = await waitQuiet();
    const t0 = Date.now() / 1000;
    const sb = await Switchboard.open({ root: daemon.qfiles, queue: "outgoing" });
    for (let i = 0; i < msgs; i += 100) await sb.enqueueMany(items.slice(i, i + 100));
    await sink.waitFor(msgs, 300_000);
    await sleep(300);
    const s = await sink.stats(true);
    const elapsed = s.last_ts ? s.last_ts - t0 : null;
    const rate = elapsed && s.recipients >= msgs ? Math.round((msgs / elapsed) * 10) / 10 : null;
    log(`${label}: ${s.recipients}/${msgs} in ${fmt(elapsed, 2)} s = ${fmt(rate, 0)} msgs/s`);
    return {
      label,
      cluster,
      msgs,
      ...machine,
      delivered: s.recipients,
      dup_pairs: s.dup_pairs,
      msgs_per_s: rate,
    };
  } finally {
    await daemon?.stop();
    await sink.stop();
    cleanup();
  }
}

/** A master of node `n` over dir/qfiles, its logs in dir/n.log. */
function startNode(dir, n, sinkPort, etcdUrl, prefix, lease) {
  const conf = path.join(dir, `config-${n}`);
  mkdirSync(path.join(conf, "lists"), { recursive: true });
  const cfg = path.join(conf, "qrunner.yaml");
  writeFileSync(
    cfg,
    [
      "qfiles: ../qfiles",
      `state: ../var-${n}`,
      "lists: lists",
      "log: { level: info }",
      'runners: {"outgoing":{"instances":1,"concurrency":8}}',
      `smtp: { hosts: [{ host: 127.0.0.1, port: ${sinkPort} }] }`,
      clusterYaml(n, etcdUrl, prefix, lease),
      "",
    ].join("\n"),
  );
  const fd = openSync(path.join(dir, `${n}.log`), "a");
  const child = spawn(process.execPath, [QRUNNER, "start", "-C", cfg, "--allow-root"], {
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  return child;
}

async function holders(etcd, prefix) {
  const kvs = await etcd.getAll().prefix(`${prefix}slices/`).strings();
  const out = {};
  for (const node of Object.values(kvs)) out[node] = (out[node] ?? 0) + 1;
  return out;
}

async function until(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** `n` fresh sha1 ids that fall in these slices (an entry may be queued under an id of our choosing). */
function idsIn(slices, n, seed) {
  const out = [];
  for (let i = 0; out.length < n; i++) {
    const sha1 = createHash("sha1").update(`${seed}-${i}`).digest("hex");
    if (slices.includes(sliceOf(sha1, SLICES))) out.push(sha1);
  }
  return out;
}

async function takeoverRun({ lease, etcd, entries }) {
  const { dir, cleanup } = benchDir("qrunner-bench-takeover-");
  const sink = await startSink(dir, { expect: 0 });
  const prefix = `/bench-takeover-${process.pid}-${Date.now()}/`;
  const nodes = {};
  try {
    nodes.a = startNode(dir, "a", sink.port, etcd.url, prefix, lease);
    nodes.b = startNode(dir, "b", sink.port, etcd.url, prefix, lease);
    await until(
      "a and b to share the slices",
      async () => {
        const h = await holders(etcd.client, prefix);
        const ready = (n) => {
          try {
            const st = JSON.parse(readFileSync(path.join(dir, `var-${n}`, "status.json"), "utf8"));
            return st.workers.length === 6 && st.workers.every((w) => w.state === "ready");
          } catch {
            return false;
          }
        };
        return h.a === SLICES / 2 && h.b === SLICES / 2 && ready("a") && ready("b");
      },
      120_000,
    );
    const kvs = await etcd.client.getAll().prefix(`${prefix}slices/`).strings();
    const aSlices = Object.entries(kvs)
      .filter(([, n]) => n === "a")
      .map(([k]) => Number(k.slice(`${prefix}slices/`.length)));
    const before = (await sink.stats(true)).recipients;
    const victims = [nodes.a.pid, ...childrenOf(nodes.a.pid)];
    const killedAt = Date.now();
    for (const pid of victims) process.kill(pid, "SIGKILL");
    // entries of a's slices, queued right after the kill: only a new owner can deliver them
    const sb = await Switchboard.open({ root: path.join(dir, "qfiles"), queue: "outgoing" });
    const ids = idsIn(aSlices, entries, `${process.pid}-${killedAt}`);
    await sb.enqueueMany(
      ids.map((id, i) => ({
        id,
        message: makePost(i, { from: "sender@example.com", to: `t${i}@example.net`, run: `${killedAt}` }),
        meta: { sender: "sender@example.com", recipients: [`t${i}@example.net`], kind: "post" },
      })),
    );
    await until(
      "b to hold every slice",
      async () => (await holders(etcd.client, prefix)).b === SLICES,
      60_000,
    );
    const heldMs = Date.now() - killedAt;
    await until(
      "the first entry of a's slices delivered",
      async () => (await sink.stats(false)).recipients > before,
      60_000,
    );
    const firstMs = Date.now() - killedAt;
    await until(
      "every entry of a's slices delivered",
      async () => (await sink.stats(false)).recipients >= before + entries,
      120_000,
    );
    const allMs = Date.now() - killedAt;
    log(
      `takeover (lease ${lease}s): b held every slice after ${heldMs} ms, first delivery ${firstMs} ms, all ${entries} ${allMs} ms`,
    );
    return { lease, held_ms: heldMs, first_ms: firstMs, all_ms: allMs, entries };
  } finally {
    for (const c of Object.values(nodes)) if (c.exitCode === null) c.kill("SIGTERM");
    await sleep(3000);
    for (const c of Object.values(nodes)) {
      if (c.exitCode === null) c.kill("SIGKILL");
      for (const pid of childrenOf(c.pid)) process.kill(pid, "SIGKILL");
    }
    await sink.stop();
    await etcd.client
      .delete()
      .prefix(prefix)
      .catch(() => undefined);
    cleanup();
  }
}

export async function main() {
  if (spawnSync("etcd", ["--version"], { stdio: "ignore" }).status !== 0) {
    log("cluster: the etcd binary is missing (apt-get install etcd-server)");
    process.exit(1);
  }
  const msgs = num("msgs", 2000, 500);
  const rounds = num("rounds", 2, 1);
  const lease = num("lease", 5, 5);
  const { dir, cleanup } = benchDir("qrunner-bench-etcd-");
  const etcd = await startEtcd(dir);
  try {
    const part = arg("part", "both");
    const R = { off: [], on: [] };
    for (let r = 0; r < rounds && part !== "takeover"; r++) {
      log(`cluster rate round ${r + 1}/${rounds}`);
      R.off.push(await rateRun({ label: "cluster off", msgs, cluster: false, etcd }));
      R.on.push(
        await rateRun({ label: "cluster on (etcd, 16 slices, one node)", msgs, cluster: true, etcd }),
      );
    }
    const rate = (k) => R[k].map((x) => x.msgs_per_s ?? 0);
    const ratio = median(rate("on")) / median(rate("off"));
    table(
      `One node, ${msgs} single-recipient 3 KB messages queued into outgoing (median (min..max) of ${rounds})`,
      ["case", "msgs/s", "duplicates"],
      [
        ["cluster off", spread(rate("off"), 0), R.off.map((x) => x.dup_pairs).join(" ")],
        ["cluster on", spread(rate("on"), 0), R.on.map((x) => x.dup_pairs).join(" ")],
      ],
    );
    const T = [];
    for (let r = 0; r < rounds && part !== "rate"; r++)
      T.push(await takeoverRun({ lease, etcd, entries: 50 }));
    table(
      `Takeover after a SIGKILL of node a (two nodes, lease ${lease}s, ${rounds} runs)`,
      ["run", "b holds every slice", "first delivery from a's slices", "all 50 delivered"],
      T.map((t, i) => [
        String(i + 1),
        `${fmt(t.held_ms / 1000, 1)} s`,
        `${fmt(t.first_ms / 1000, 1)} s`,
        `${fmt(t.all_ms / 1000, 1)} s`,
      ]),
    );
    const worstFirst = T.length ? Math.max(...T.map((t) => t.first_ms)) / 1000 : null;
    const targets = [
      ...(R.on.length ? [target("delivery rate, cluster on vs off (one node)", ratio, ">=", 0.9, "x")] : []),
      ...(T.length
        ? [
            target(
              `takeover: first delivery after a SIGKILL (lease ${lease}s + 5 s)`,
              worstFirst,
              "<=",
              lease + 5,
              " s",
            ),
          ]
        : []),
    ];
    targetsTable("Cluster: targets", targets);
    emit("cluster", { msgs, rounds, lease, rate: R, ratio, takeover: T, targets });
  } finally {
    await etcd.stop();
    cleanup();
  }
}

if (isMain(import.meta.url)) await main();
