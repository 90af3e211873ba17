// End to end, inject to SMTP acceptance at the peers' sink (../shared/peers/sink.py), side by side:
//  (a) list fan-out: P posts x M members through a real qrunner master, against Mailman 3
//      (../shared/peers/bench_mailman_e2e.sh) on the same work;
//  (b) plain relay: R single-recipient messages through qrunner, against Postfix
//      (../shared/peers/bench_postfix.sh).
// t0 = first injection, end = the sink's last_ts, as the peer scripts measure. The `cold` run counts
// the start too: the P posts are queued while the daemon is stopped, t0 = `qrunner start`.
//
//   node benchmarks/e2e.js [--quick] [--json] [--rounds=2] [--posts=200] [--members=100] [--relay=2000]
//        [--inject-conc=2] [--no-peers] [--only-e2e=fanout,cold,inject,lmtp,relay]
//        [--lmtp-client=smtp-source|nodemailer]   (LMTP runs: Postfix's smtp-source -L when installed)
import { setInterval, clearInterval } from "node:timers";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import net from "node:net";
import nodemailer from "nodemailer";
import path from "node:path";
import { Switchboard } from "../dist/queue/switchboard.js";
import {
  PEERS,
  QRUNNER,
  arg,
  benchDir,
  cpuDelta,
  emit,
  flag,
  fmt,
  havePeer,
  isMain,
  log,
  machineBusyS,
  makePost,
  median,
  num,
  queueCounts,
  runPeer,
  sleep,
  spread,
  startDaemon,
  startSink,
  table,
  target,
  targetsTable,
  waitQuiet,
  ROOT,
} from "./lib.js";

const LIST = "bench@lists.example.com";
const member = (i) => `m${String(i).padStart(5, "0")}@example.com`;

/** Inject `msgs` into `incoming` in-process with `producers` concurrent enqueue loops (like Mailman's inject_text). */
async function injectInProcess(qfiles, msgs, meta, producers) {
  const sb = await Switchboard.open({ root: qfiles, queue: "incoming" });
  let next = 0;
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (next < msgs.length) {
        const i = next++;
        await sb.enqueue(msgs[i], meta);
      }
    }),
  );
  sb.close();
}

/** Inject each message with its own `qrunner inject` process (as an MTA's pipe does), `conc` at a time. */
async function injectProcesses(cfg, msgs, to, conc) {
  let next = 0;
  let failed = 0;
  const one = (buf) =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, [QRUNNER, "inject", `--to=${to}`, "-C", cfg], {
        stdio: ["pipe", "ignore", "pipe"],
      });
      let err = "";
      c.stderr.on("data", (d) => (err += d));
      c.on("exit", (code) => {
        if (code !== 0) {
          failed++;
          if (failed < 3) log(`inject exited ${code}: ${err.trim()}`);
        }
        resolve();
      });
      c.stdin.end(buf);
    });
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < msgs.length) await one(msgs[next++]);
    }),
  );
  return failed;
}

/** A free loopback port (nothing listens on it once this resolves). */
export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Does this build's master run the LMTP listener (intake.lmtp)? Something outside intake/ starts it. */
export function lmtpSupported() {
  if (!existsSync(path.join(ROOT, "dist/intake/lmtp.js"))) return false;
  return ["master", "metrics"].some((d) => {
    const dir = path.join(ROOT, "dist", d);
    return (
      existsSync(dir) &&
      readdirSync(dir).some(
        (f) => f.endsWith(".js") && readFileSync(path.join(dir, f), "utf8").includes("LmtpListener"),
      )
    );
  });
}

/**
 * Deliver each message over LMTP to the master's listener, `conns` pooled connections (as an MTA's
 * LMTP client would). Nagle off on the client too, or every message would wait for a delayed ACK.
 */
export async function injectLmtp(port, msgs, from, to, conns) {
  const t = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    lmtp: true,
    pool: true,
    maxConnections: conns,
    maxMessages: Infinity,
    ignoreTLS: true,
    logger: false,
    getSocket: (_o, cb) =>
      cb(null, {
        connection: net.connect({ host: "127.0.0.1", port, noDelay: true }),
      }),
  });
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (next < msgs.length) {
        const raw = msgs[next++];
        try {
          await t.sendMail({ envelope: { from, to: [to] }, raw });
        } catch (err) {
          failed++;
          if (failed < 3) log(`lmtp: ${err.message}`);
        }
      }
    }),
  );
  t.close();
  return failed;
}

const SMTP_SOURCE = "/usr/sbin/smtp-source";

/**
 * Hand `n` messages to the LMTP listener with Postfix's own load generator in LMTP mode
 * (`smtp-source -L`: the C client Postfix's relay run is fed by, here speaking LMTP as Postfix's
 * lmtp(8) would), `conns` sessions, many messages per session, `size` bytes of payload each (the
 * Postfix run's SIZE). It writes its own headers, with a unique Message-Id per message.
 */
export function injectSmtpSource(port, n, from, to, conns, size = 3000) {
  return new Promise((resolve) => {
    const c = spawn(
      SMTP_SOURCE,
      [
        "-L",
        "-4",
        "-d",
        "-s",
        String(conns),
        "-m",
        String(n),
        "-l",
        String(size),
        "-f",
        from,
        "-t",
        to,
        "-S",
        "lmtp bench",
        `127.0.0.1:${port}`,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let err = "";
    c.stderr.on("data", (d) => (err += d));
    c.on("exit", (code) => {
      if (code !== 0) log(`smtp-source exited ${code}: ${err.trim().slice(0, 300)}`);
      resolve(code === 0 ? 0 : n);
    });
  });
}

/** Which LMTP client the runs use: smtp-source when installed (default), else nodemailer. */
function lmtpClient() {
  const want = arg("lmtp-client", "smtp-source");
  return want === "smtp-source" && existsSync(SMTP_SOURCE) ? "smtp-source" : "nodemailer";
}

/**
 * One qrunner run: a fresh daemon and sink, `posts` messages to a list of `members`, injected `via`
 * enqueue (in-process), inject (processes), lmtp, or cold: enqueued in-process while the daemon is
 * stopped, then timed from `qrunner start`. Returns the figures, in the peer scripts' field names.
 */
export async function qrunnerRun({ posts, members, via, producers = 1, conc = 2, label }) {
  const { dir, cleanup } = benchDir("qrunner-bench-e2e-");
  const expect = posts * members;
  const sink = await startSink(dir, { expect });
  let daemon;
  try {
    const memberList = Array.from({ length: members }, (_, i) => member(i));
    const lmtpPort = via === "lmtp" ? await freePort() : null;
    const site = {
      hosts: [{ host: "127.0.0.1", port: sink.port }],
      lists: [{ address: LIST, members: memberList }],
      runners: JSON.parse(arg("runners", "{}")),
      // smtp-source does not reconnect after the 421 that ends a session past max_transactions
      extra: lmtpPort
        ? `intake: { lmtp: { listen: "127.0.0.1:${lmtpPort}", max_transactions: 1000000 } }`
        : "",
    };
    const cold = via === "cold";
    // a site that has run before (its state directory kept), as a restart finds it
    if (cold) {
      daemon = await startDaemon(dir, site);
      await daemon.stop();
    } else daemon = await startDaemon(dir, site);
    const run = `${process.pid}-${Date.now()}`;
    const from = member(0);
    const msgs = Array.from({ length: posts }, (_, i) => makePost(i, { from, to: LIST, run }));
    const meta = {
      sender: from,
      recipients: [LIST],
      to: LIST,
      list: LIST,
      kind: "post",
    };
    if (cold) await injectInProcess(daemon.qfiles, msgs, meta, producers);
    else await sleep(300); // let every worker reach its first idle wait
    const quiet = await waitQuiet();
    if (cold) daemon = await startDaemon(dir, { ...site, ready: false });
    const cpu0 = cold ? {} : daemon.cpu();
    const sinkCpu0 = sink.cpuS();
    const mb0 = machineBusyS();
    const rssPeak = {};
    const sampler = setInterval(() => {
      for (const [k, v] of Object.entries(daemon.rss()))
        if (v !== null) rssPeak[k] = Math.max(rssPeak[k] ?? 0, v);
    }, 100);
    const t0 = cold ? daemon.startedAt / 1000 : Date.now() / 1000;
    let injectFailed = 0;
    // cold: the posts were queued before the start
    if (cold) injectFailed = 0;
    else if (via === "inject") injectFailed = await injectProcesses(daemon.cfg, msgs, LIST, conc);
    else if (via === "lmtp")
      injectFailed =
        lmtpClient() === "smtp-source"
          ? await injectSmtpSource(lmtpPort, posts, from, LIST, conc)
          : await injectLmtp(lmtpPort, msgs, from, LIST, conc);
    else await injectInProcess(daemon.qfiles, msgs, meta, producers);
    const tInjected = Date.now() / 1000;
    let s = await sink.waitFor(expect, Number(arg("timeout", 300)) * 1000);
    await sleep(500); // catch late duplicates
    s = await sink.stats(true);
    const mb1 = machineBusyS();
    const cpu1 = daemon.cpu();
    clearInterval(sampler);
    const elapsed = s.last_ts ? s.last_ts - t0 : null;
    const problems = daemon.problems();
    const res = {
      label,
      system: "qrunner",
      via,
      posts,
      members,
      producers: via === "inject" || via === "lmtp" ? conc : producers,
      ...(via === "lmtp" ? { lmtp_client: lmtpClient() } : {}),
      ...quiet,
      machine_busy_cpu_s: Math.round((mb1 - mb0) * 100) / 100,
      complete: s.recipients >= expect,
      expected_deliveries: expect,
      deliveries: s.recipients,
      smtp_transactions: s.messages,
      sink_connections: s.connections,
      dup_pairs: s.dup_pairs,
      dup_transactions: s.dup_transactions,
      lost_deliveries: Math.max(0, expect - s.recipients),
      inject_s: Math.round((tInjected - t0) * 1000) / 1000,
      inject_failed: injectFailed,
      elapsed_s: elapsed && Math.round(elapsed * 1000) / 1000,
      first_delivery_after_s: s.first_ts ? Math.round((s.first_ts - t0) * 1000) / 1000 : null,
      posts_per_s: elapsed ? Math.round((posts / elapsed) * 10) / 10 : null,
      deliveries_per_s: elapsed ? Math.round((s.recipients / elapsed) * 10) / 10 : null,
      cpu_s: cpuDelta(cpu0, cpu1),
      sink_cpu_s: Math.round(((sink.cpuS() ?? 0) - (sinkCpu0 ?? 0)) * 100) / 100,
      rss_peak_mb: Object.fromEntries(Object.entries(rssPeak).map(([k, v]) => [k, Math.round(v * 10) / 10])),
      queues_left: queueCounts(daemon.qfiles),
      log_problems: problems.length,
      ...(problems.length ? { first_problem: problems[0].slice(0, 300) } : {}),
    };
    log(
      `${label}: ${res.deliveries}/${expect} deliveries in ${fmt(elapsed, 3)} s: ${fmt(res.deliveries_per_s, 0)} deliveries/s, ` +
        `${fmt(res.posts_per_s, 1)} msgs/s, ${res.smtp_transactions} transactions, dup ${res.dup_pairs}, cpu ${JSON.stringify(res.cpu_s)}`,
    );
    return res;
  } finally {
    await daemon?.stop();
    await sink.stop();
    cleanup();
  }
}

function mailmanRun(posts, members) {
  return runPeer("mailman", "bash", [path.join(PEERS, "bench_mailman_e2e.sh")], {
    N: String(posts),
    M: String(members),
    QUIET_WAIT: arg("quiet-wait", "60"),
  });
}
function postfixRun(n) {
  return runPeer("postfix", "bash", [path.join(PEERS, "bench_postfix.sh")], {
    N: String(n),
    QUIET_WAIT: arg("quiet-wait", "60"),
  });
}

export async function main() {
  const rounds = num("rounds", 2, 1);
  const posts = num("posts", 200);
  const members = num("members", 100);
  const relayN = num("relay", 2000);
  const conc = num("inject-conc", 2);
  const peers = !flag("no-peers");
  const lmtp = lmtpSupported() && !flag("no-lmtp");
  const parts = arg("only-e2e", "fanout,cold,inject,lmtp,relay").split(",");
  const mm = peers && havePeer("mailman");
  const pf = peers && havePeer("postfix");
  if (peers && !mm) log("Mailman 3 not installed (bash ../shared/peers/install.sh): no Mailman figures");
  if (peers && !pf) log("Postfix not installed (bash ../shared/peers/install.sh): no Postfix figures");
  if (!lmtpSupported()) log("this build's master has no LMTP listener (intake.lmtp): no LMTP figures");

  const R = {
    fanout: [],
    cold: [],
    inject: [],
    lmtp: [],
    relay: [],
    relayLmtp: [],
    mailman: [],
    postfix: [],
  };
  const fan = (via, label, opts = {}) => qrunnerRun({ posts, members, via, label, ...opts });
  const relay = (via, label) =>
    qrunnerRun({
      posts: relayN,
      members: 1,
      via,
      producers: 4,
      conc: 4,
      label,
    });
  // interleaved: drift on a shared machine hits every system alike
  for (let r = 0; r < rounds; r++) {
    log(`e2e round ${r + 1}/${rounds}`);
    if (parts.includes("fanout"))
      R.fanout.push(
        await fan("enqueue", `qrunner fan-out ${posts}x${members} (enqueue)`, {
          producers: 1,
        }),
      );
    if (parts.includes("cold"))
      R.cold.push(
        await fan("cold", `qrunner fan-out ${posts}x${members} (queued while stopped, from start)`),
      );
    if (mm && (parts.includes("fanout") || parts.includes("cold"))) {
      const m = await mailmanRun(posts, members);
      if (m) {
        log(
          `mailman: ${m.deliveries}/${m.expected_deliveries} in ${m.elapsed_s} s: ${m.deliveries_per_s} deliveries/s`,
        );
        R.mailman.push(m);
      }
    }
    if (parts.includes("inject"))
      R.inject.push(
        await fan("inject", `qrunner fan-out ${posts}x${members} (qrunner inject x${conc})`, { conc }),
      );
    if (lmtp && parts.includes("lmtp"))
      R.lmtp.push(
        await fan("lmtp", `qrunner fan-out ${posts}x${members} (LMTP via ${lmtpClient()}, 1 connection)`, {
          conc: 1,
        }),
      );
    if (parts.includes("relay"))
      R.relay.push(await relay("enqueue", `qrunner relay ${relayN}x1 (enqueue, 4 producers)`));
    if (pf && parts.includes("relay")) {
      const p = await postfixRun(relayN);
      if (p) {
        log(`postfix: ${p.deliveries}/${p.expected_deliveries} in ${p.elapsed_s} s: ${p.msgs_per_s} msgs/s`);
        R.postfix.push(p);
      }
    }
    if (lmtp && parts.includes("relay") && parts.includes("lmtp"))
      R.relayLmtp.push(
        await relay("lmtp", `qrunner relay ${relayN}x1 (LMTP via ${lmtpClient()}, 4 connections)`),
      );
  }

  const dps = (xs) => xs.filter((x) => x.complete).map((x) => x.deliveries_per_s);
  const mps = (xs) => xs.filter((x) => x.complete).map((x) => x.posts_per_s ?? x.msgs_per_s);
  const cpuTotal = (xs) =>
    xs.map(
      (x) =>
        x.cpu_s?.total ?? (x.runner_cpu_s ? Object.values(x.runner_cpu_s).reduce((a, b) => a + b, 0) : null),
    );
  const row = (name, xs) =>
    xs.length
      ? [
          name,
          xs.length,
          spread(dps(xs), 0),
          spread(mps(xs), 1),
          spread(
            xs.map((x) => x.elapsed_s),
            2,
          ),
          spread(
            xs.map((x) => x.first_delivery_after_s),
            3,
          ),
          xs.map((x) => `${x.deliveries}/${x.expected_deliveries}`).join(" "),
          xs.map((x) => x.dup_pairs).join(" "),
          spread(
            cpuTotal(xs).filter((v) => v !== null),
            2,
          ),
          spread(
            xs.map((x) => x.sink_cpu_s),
            2,
          ),
        ]
      : [name, 0, "-", "-", "-", "-", "-", "-", "-", "-"];
  table(
    `End to end, inject to SMTP acceptance at sink.py (median (min..max) of ${rounds} round(s))`,
    [
      "system",
      "runs",
      "deliveries/s",
      "msgs/s",
      "elapsed s",
      "first after s",
      "delivered",
      "dups",
      "cpu s (daemon)",
      "sink cpu s",
    ],
    [
      row(`qrunner ${posts}x${members}, enqueue in-process`, R.fanout),
      row(`qrunner ${posts}x${members}, queued while stopped, from start`, R.cold),
      row(`qrunner ${posts}x${members}, qrunner inject x${conc}`, R.inject),
      ...(R.lmtp.length ? [row(`qrunner ${posts}x${members}, LMTP x1`, R.lmtp)] : []),
      row(`Mailman 3 ${posts}x${members}, inject_text`, R.mailman),
      row(`qrunner ${relayN}x1, enqueue x4`, R.relay),
      ...(R.relayLmtp.length ? [row(`qrunner ${relayN}x1, LMTP x4`, R.relayLmtp)] : []),
      row(`Postfix ${relayN}x1, smtp-source x4`, R.postfix),
    ],
  );
  // CPU per process, qrunner runs
  for (const [name, xs] of [
    ["fan-out (enqueue)", R.fanout],
    ["fan-out (from start)", R.cold],
    ["fan-out (inject)", R.inject],
    ["fan-out (LMTP)", R.lmtp],
    ["relay (enqueue)", R.relay],
    ["relay (LMTP)", R.relayLmtp],
  ]) {
    if (!xs.length) continue;
    const keys = Object.keys(xs[0].cpu_s);
    table(
      `qrunner ${name}: CPU seconds per process during the run (each round)`,
      ["process", ...xs.map((_, i) => `round ${i + 1}`)],
      keys.map((k) => [k, ...xs.map((x) => fmt(x.cpu_s[k]))]),
    );
  }
  if (R.mailman.length)
    table(
      "Mailman 3: CPU seconds per runner during the run",
      ["runner", ...R.mailman.map((_, i) => `round ${i + 1}`)],
      Object.keys(R.mailman[0].runner_cpu_s ?? {}).map((k) => [
        k,
        ...R.mailman.map((x) => fmt(x.runner_cpu_s?.[k])),
      ]),
    );

  const med = (xs) => (xs.length ? median(xs) : null);
  const ratio = (a, b, f) => (a.length && b.length ? med(f(a)) / med(f(b)) : null);
  const ratioA = ratio(R.fanout, R.mailman, dps);
  const ratioAcold = ratio(R.cold, R.mailman, dps);
  const ratioAinj = ratio(R.inject, R.mailman, dps);
  const ratioAlmtp = ratio(R.lmtp, R.mailman, dps);
  const ratioB = ratio(R.relay, R.postfix, mps);
  const ratioBlmtp = ratio(R.relayLmtp, R.postfix, mps);
  const targets = [];
  if (ratioA !== null)
    targets.push(target("(a) deliveries/s vs Mailman 3 (both injected in-process)", ratioA, ">=", 10, "x"));
  if (ratioAcold !== null)
    targets.push(
      target(
        "(a) deliveries/s vs Mailman 3, qrunner's start included (queued while stopped)",
        ratioAcold,
        ">=",
        10,
        "x",
      ),
    );
  if (ratioAinj !== null)
    targets.push(
      target(`(a) deliveries/s vs Mailman 3, qrunner inject processes x${conc}`, ratioAinj, ">=", 10, "x", {
        info: true,
      }),
    );
  if (ratioAlmtp !== null)
    targets.push(
      target("(a) deliveries/s vs Mailman 3, qrunner over LMTP", ratioAlmtp, ">=", 10, "x", { info: true }),
    );
  if (ratioB !== null)
    targets.push(target("(b) msgs/s vs Postfix (qrunner enqueue x4)", ratioB, ">=", 1, "x"));
  if (ratioBlmtp !== null)
    targets.push(
      // issue 13: Postfix hands mail to qrunner over LMTP; at least 1.2x what Postfix relays itself
      target("(b) msgs/s vs Postfix, qrunner over LMTP x4", ratioBlmtp, ">=", 1.2, "x"),
    );
  const mine = [...R.fanout, ...R.cold, ...R.inject, ...R.lmtp, ...R.relay, ...R.relayLmtp];
  const lost = mine.reduce((n, x) => n + x.lost_deliveries + x.dup_pairs, 0);
  targets.push(target("qrunner lost + duplicate deliveries, all runs", lost, "<=", 0));
  const sinkCpu = Math.max(...mine.map((x) => x.sink_cpu_s / (x.elapsed_s || 1)));
  targets.push(
    target("sink CPU share of the busiest run (the sink is not the bottleneck)", sinkCpu, "<=", 0.5, "", {
      info: true,
    }),
  );
  targetsTable("End to end: targets (ratios of medians)", targets);
  emit("e2e", {
    rounds,
    ratio_fanout_vs_mailman: ratioA,
    ratio_fanout_cold_vs_mailman: ratioAcold,
    ratio_fanout_inject_vs_mailman: ratioAinj,
    ratio_fanout_lmtp_vs_mailman: ratioAlmtp,
    ratio_relay_vs_postfix: ratioB,
    ratio_relay_lmtp_vs_postfix: ratioBlmtp,
    targets,
    runs: R,
  });
}

if (isMain(import.meta.url)) await main();
