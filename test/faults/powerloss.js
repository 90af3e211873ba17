#!/usr/bin/env node
// The power-loss test. The queues (qfiles) and the state directory sit on LazyFS (lazyfs.js), which
// drops every byte not yet fsynced when told to. Each round: `qrunner start` (the master and its real
// workers) delivers to a recording SMTP server on loopback while posts come in through `qrunner inject`
// processes; then every process is SIGKILLed at once (master, workers, the injects in flight), LazyFS
// drops its unsynced data (the power loss), and the next `qrunner start` follows at once. After the
// last round the daemon drains and stops. The verdict:
//   - every acknowledged post (inject exit 0) reached every member: lost must be 0;
//   - no message arrived with other bytes than injected, and none that was never injected: corrupt 0;
//   - duplicates are classified: a delivery repeated after a power loss that fell shortly after the
//     first acceptance (the entry's finish had not reached the disk) is what a power loss may
//     legitimately redeliver, and so is a post in flight at a power loss whose step was redone after
//     the start (both copies after it); a message delivered again long after it was finished
//     (resurrected), or twice when it came after the last power loss, fails the run;
//   - nothing in `bad`, nothing left queued or in progress;
//   - every start succeeded (was not refused because of the dead master's lock) within --start-bound-ms.
//
//   npm run build && node test/faults/powerloss.js --rounds=8 [--seed=S] [--round-ms=MS] [--json] [--keep]
//
// Needs root, /dev/fuse and LazyFS (`bash ../shared/tools/lazyfs/build.sh`; --lazyfs=PATH or
// $QRUNNER_LAZYFS); --check only says whether it can run here. Exit 0 when every check passes, 1 when one fails, 2 on an error, 3 when it
// cannot run here (the reason is printed).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { finish, mergeDeliveries, missing, pendingEntries, scanQueues, verdict } from "./check.js";
import { LogTally, childrenOf, runCli, startMaster } from "./daemon.js";
import { lazyfsBinary, lazyfsUnavailable, mountLazyfs } from "./lazyfs.js";
import { configText, makePost, makeSite, prng, writeConfig } from "./site.js";
import { startSink } from "./sink.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (msg) => process.stderr.write(`powerloss: ${msg}\n`);

export function parseArgs(argv) {
  const get = (name, dflt) => {
    const a = argv.find((x) => x.startsWith(`--${name}=`));
    return a ? a.slice(name.length + 3) : dflt;
  };
  return {
    rounds: Number(get("rounds", "6")),
    seed: Number(get("seed", String(Date.now() % 1e9))),
    roundMs: Number(get("round-ms", "3000")),
    injectors: Number(get("injectors", "3")),
    startBoundMs: Number(get("start-bound-ms", "3000")),
    /** a repeated delivery whose first copy came this long before the power loss is a resurrection */
    finishWindowMs: Number(get("finish-window-ms", "15000")),
    drainMs: Number(get("drain-ms", "180000")),
    lazyfs: lazyfsBinary(get("lazyfs", "")),
    repo: path.resolve(get("repo", fileURLToPath(new URL("../../", import.meta.url)))),
    json: argv.includes("--json"),
    keep: argv.includes("--keep"),
  };
}

/** The log tally, plus when the master said it started (it holds the lock then) and whether it was refused. */
class StartTally extends LogTally {
  constructor() {
    super();
    this.startingAt = null;
    this.readyAt = null;
    this.lockMs = null;
  }
  line(text) {
    super.line(text);
    if (text.includes('"master lock taken"')) this.lockMs ??= JSON.parse(text).ms;
    if (text.includes('"master starting"')) this.startingAt ??= Date.now();
    if (text.includes('"all workers ready"')) this.readyAt ??= Date.now();
  }
}

/** Is this pid gone (or a zombie, which writes nothing)? */
function gone(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** Every process (but LazyFS itself) with a file, its cwd or its root under `dir`. */
function processesUnder(dir, except) {
  const out = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid || except.includes(pid)) continue;
    let links = [];
    try {
      links = readdirSync(`/proc/${pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return "";
        }
      });
      links.push(readlinkSync(`/proc/${pid}/cwd`));
    } catch {
      continue;
    }
    if (links.some((l) => l === dir || l.startsWith(dir + "/"))) out.push(pid);
  }
  return out;
}

/** A `qrunner inject` process; resolves with its exit code (null when killed). */
function injectCli(repo, configFile, to, raw) {
  const child = spawn(
    process.execPath,
    [path.join(repo, "bin/qrunner"), "inject", "-C", configFile, `--to=${to}`],
    {
      env: { ...process.env, QRUNNER_ALLOW_ROOT: "1" },
      stdio: ["pipe", "ignore", "pipe"],
    },
  );
  let err = "";
  child.stderr.on("data", (d) => (err += d.toString()));
  child.stdin.on("error", () => undefined);
  child.stdin.end(raw);
  const done = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal, err })));
  return { child, done };
}

export async function runPowerLoss(opts) {
  const started = Date.now();
  const base = mkdtempSync(path.join(os.tmpdir(), "qrunner-powerloss-"));
  say(`work dir ${base}`);
  const fs = await mountLazyfs(opts.lazyfs, base);
  say(`LazyFS pid ${fs.pid} mounted at ${fs.mnt}`);
  const site = makeSite(base);
  site.qfiles = path.join(fs.mnt, "qfiles");
  site.state = path.join(fs.mnt, "var");
  say(`site config ${site.configFile}`);
  const sink = await startSink("mx1");
  const h = { opts, fs, site, sink, master: null, tally: null, crashes: [], injects: new Set() };
  const cleanup = async () => {
    // nothing of ours may outlive the run: every process on the mount, the master, the sink, LazyFS
    for (const p of processesUnder(fs.mnt, [fs.pid])) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // gone
      }
    }
    if (h.master) h.master.child.kill("SIGKILL");
    for (const i of h.injects) i.child.kill("SIGKILL");
    await sink.close();
    await fs.unmount();
  };
  const onSignal = () => void cleanup().finally(() => process.exit(2));
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  try {
    const figures = await exercise(h, started);
    await cleanup();
    figures.site = opts.keep || figures.failures.length ? base : null;
    if (!figures.site) rmSync(base, { recursive: true, force: true });
    return figures;
  } catch (err) {
    await cleanup();
    say(`work dir kept: ${base}`);
    throw err;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

/** Start the master; resolves once it says it started, or with `refused` when it exited saying why. */
async function start(h, round) {
  const t0 = Date.now();
  let refusedTimes = 0;
  for (;;) {
    if (h.tally) h.crashes.push(...h.tally.crashes);
    h.tally = new StartTally();
    h.master = startMaster(h.opts.repo, h.site, h.tally);
    const exited = h.master.exited.then((e) => ({ exited: e }));
    for (;;) {
      const r = await Promise.race([exited, sleep(20).then(() => null)]);
      if (h.tally.startingAt !== null) {
        return { round, at: t0, ms: h.tally.startingAt - t0, lockMs: h.tally.lockMs, refused: refusedTimes };
      }
      if (r !== null) {
        const text = h.master.stderr();
        if (!text.includes("another master holds the lock")) throw new Error(`qrunner start failed: ${text}`);
        refusedTimes++;
        say(`round ${round}: start refused (${text.trim().split("\n").at(-1)}); retrying in 1 s`);
        if (Date.now() - t0 > 60_000) throw new Error("qrunner start refused for 60 s");
        await sleep(1000);
        break;
      }
    }
  }
}

/** The power loss: SIGKILL every process writing on the mount at once, wait until they are gone, drop the cache. */
async function cutPower(h) {
  const victims = new Set([
    h.master.pid,
    ...childrenOf(h.master.pid),
    ...[...h.injects].map((i) => i.child.pid),
  ]);
  for (const p of processesUnder(h.fs.mnt, [h.fs.pid])) victims.add(p);
  for (const p of victims) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone already
    }
  }
  const until = Date.now() + 20_000;
  while ([...victims].some((p) => !gone(p))) {
    if (Date.now() > until)
      throw new Error(`processes still alive after SIGKILL: ${[...victims].filter((p) => !gone(p))}`);
    await sleep(20);
  }
  await h.master.exited;
  await h.fs.clearCache();
  return victims.size;
}

async function exercise(h, started) {
  const { opts, site, sink } = h;
  writeConfig(
    site,
    configText([sink], [1])
      .replace("qfiles: ../qfiles", `qfiles: ${site.qfiles}`)
      .replace("state: ../var", `state: ${site.state}`),
  );
  const rnd = prng(opts.seed);
  const posts = new Map();
  const expected = new Map();
  const counts = { injected: 0, acknowledged: 0, unacknowledged: 0, injectErrors: [] };
  const starts = [];
  const cuts = [];
  let paused = false;
  let stopInjecting = false;
  let n = 0;

  // injectors: `qrunner inject` processes, a few at once, all the time but during a cut
  const injector = async () => {
    while (!stopInjecting) {
      if (paused) {
        await sleep(20);
        continue;
      }
      const post = makePost(opts.seed, n++, rnd.pick(site.lists), rnd);
      post.injectedAt = Date.now();
      posts.set(post.id, post);
      counts.injected++;
      const i = injectCli(opts.repo, site.configFile, post.list, post.raw);
      h.injects.add(i);
      const r = await i.done;
      h.injects.delete(i);
      if (r.code === 0) {
        counts.acknowledged++;
        for (const m of post.recipients) expected.set(`${post.id} ${m}`, post);
      } else if (r.signal === "SIGKILL") counts.unacknowledged++;
      else counts.injectErrors.push(`post ${post.n}: inject exited ${r.code}: ${r.err.trim().slice(0, 300)}`);
    }
  };
  const injectors = Array.from({ length: opts.injectors }, () => injector());

  for (let round = 1; round <= opts.rounds; round++) {
    const s = await start(h, round);
    starts.push(s);
    if (cuts.length) cuts[cuts.length - 1].restartAt = s.at;
    say(
      `round ${round}/${opts.rounds}: started in ${s.ms} ms (lock ${s.lockMs} ms)${s.refused ? ` after ${s.refused} refusals` : ""}`,
    );
    // cut while mail flows: once this round's master delivers, after a random while
    const before = sink.stats.deliveries;
    const flowBy = Date.now() + 60_000;
    while (sink.stats.deliveries === before && Date.now() < flowBy) await sleep(50);
    await sleep(rnd.between(Math.round(opts.roundMs * 0.2), opts.roundMs));
    paused = true;
    const at = Date.now();
    const killed = await cutPower(h);
    cuts.push({ round, at, killed, deliveredBefore: sink.stats.deliveries });
    say(`round ${round}: power cut (${killed} processes killed, ${sink.stats.deliveries} deliveries so far)`);
    paused = false;
  }
  stopInjecting = true;
  await Promise.all(injectors);

  // the start after the last power loss, then drain
  const last = await start(h, opts.rounds + 1);
  starts.push(last);
  cuts[cuts.length - 1].restartAt = last.at;
  say(`after the last power loss: started in ${last.ms} ms (lock ${last.lockMs} ms); draining`);
  const drainEnd = Date.now() + opts.drainMs;
  for (;;) {
    const left = missing(expected, mergeDeliveries([sink]));
    const pending = pendingEntries(scanQueues(site.qfiles));
    if (left === 0 && pending === 0) break;
    if (Date.now() > drainEnd) {
      say(`drain timed out: ${left} pairs missing, ${pending} entries pending`);
      break;
    }
    await sleep(250);
  }
  const stop = await runCli(opts.repo, ["stop", "-C", site.configFile]);
  await h.master.exited;
  const scan = scanQueues(site.qfiles);

  // ---- the verdict
  const v = verdict({ expected, posts, sinks: [sink], kills: [] });
  const deliveries = mergeDeliveries([sink]);
  const duplicates = {
    pairs: 0,
    messages: new Set(),
    redelivered: 0,
    resurrected: 0,
    withoutPowerLoss: 0,
    samples: [],
    causes: {},
  };
  let unacknowledgedDelivered = 0;
  let unknown = 0;
  for (const [key, times] of deliveries) {
    const id = key.split(" ")[0];
    if (!posts.has(id)) {
      unknown += times.length;
      continue;
    }
    if (!expected.has(key)) unacknowledgedDelivered++;
    for (let i = 1; i < times.length; i++) {
      duplicates.pairs++;
      duplicates.messages.add(id);
      // the last power loss between the earlier copy and this one: no daemon ran from the cut to the
      // next start, so a copy recorded before that start was sent before the cut
      const k = cuts.findLastIndex((c) => c.restartAt > times[i - 1] && c.restartAt <= times[i]);
      const before = k < 0 ? 0 : Math.max(0, cuts[k].at - times[i - 1]);
      let cause;
      let kind;
      // both copies after one start: a post already in the queue at the power loss that began this
      // run can have been cut between a step's durable output and its finish (an incoming entry's
      // fan-out written, its finish not), and the step redone after the start while its first output
      // was being delivered: at least once, as after any crash. Only a post that came after the
      // power loss has no excuse.
      const epoch = cuts.findLast((c) => c.restartAt <= times[i - 1]);
      if (k < 0 && epoch && (posts.get(id)?.injectedAt ?? Infinity) < epoch.at) {
        cause = `redelivered after the start that followed power loss ${cuts.indexOf(epoch) + 1}: in flight at the cut, its step redone`;
        kind = "in flight at a power loss, its step redone after the start (both copies after it)";
        duplicates.redelivered++;
      } else if (k < 0) {
        cause = kind = "delivered twice without a power loss in between";
        duplicates.withoutPowerLoss++;
      } else if (before <= opts.finishWindowMs) {
        const when = before ? `${before} ms before` : "as";
        cause = `accepted ${when} power loss ${k + 1} came: its finish had not reached the disk`;
        kind = `accepted within ${opts.finishWindowMs / 1000} s before a power loss: its finish had not reached the disk`;
        duplicates.redelivered++;
      } else {
        cause = `resurrected: finished ${before} ms before power loss ${k + 1}`;
        kind = `resurrected: finished more than ${opts.finishWindowMs / 1000} s before a power loss`;
        duplicates.resurrected++;
      }
      duplicates.causes[kind] = (duplicates.causes[kind] ?? 0) + 1;
      if (duplicates.samples.length < 10) duplicates.samples.push({ key, cause });
    }
  }
  const count = (q, ext) => scan[q]?.[ext] ?? 0;
  const figures = {
    seed: opts.seed,
    rounds: opts.rounds,
    powerLosses: cuts.length,
    seconds: Math.round((Date.now() - started) / 1000),
    posts: counts.injected,
    acknowledged: counts.acknowledged,
    unacknowledged: counts.unacknowledged,
    unacknowledgedDelivered,
    injectErrors: counts.injectErrors.slice(0, 10),
    members: site.lists.reduce((a, l) => a + l.members.length, 0),
    expected: v.expected,
    delivered: v.delivered,
    lost: v.lost,
    lostSample: v.lostKeys,
    corrupt: v.corrupted + unknown,
    unknownDeliveries: unknown,
    duplicates: duplicates.pairs,
    duplicateMessages: duplicates.messages.size,
    duplicatesRedelivered: duplicates.redelivered,
    duplicatesResurrected: duplicates.resurrected,
    duplicatesWithoutPowerLoss: duplicates.withoutPowerLoss,
    duplicateSample: duplicates.samples,
    /** ms from \`qrunner start\` to "master starting" (node's start, the config, the lock, the listeners) */
    starts: starts.map((s) => s.ms),
    startMaxMs: Math.max(...starts.map((s) => s.ms)),
    /** ms the master waited for the lock and the dead master's workers (its "master lock taken" line) */
    lockMs: starts.map((s) => s.lockMs),
    lockMaxMs: Math.max(...starts.map((s) => s.lockMs ?? Infinity)),
    refusedStarts: starts.reduce((a, s) => a + s.refused, 0),
    killedPerCut: cuts.map((c) => c.killed),
    bad: ["qf", "wip", "tmp", "other"].reduce((a, e) => a + count("bad", e), 0),
    badFiles: scan.bad?.names.slice(0, 10) ?? [],
    pending: pendingEntries(scan),
    shunted: count("shunt", "qf"),
    tmpLeft: Object.values(scan).reduce((a, c) => a + c.tmp, 0),
    crashes: h.crashes.length + h.tally.crashes.length,
    stopExit: stop.code,
    sink: { ...sink.stats },
  };
  const failures = [];
  const need = (ok, what) => ok || failures.push(what);
  need(figures.lost === 0, `${figures.lost} acknowledged (post, member) pairs lost`);
  need(figures.corrupt === 0, `${figures.corrupt} corrupt deliveries (other bytes, or never injected)`);
  need(figures.duplicatesResurrected === 0, `${figures.duplicatesResurrected} finished messages resurrected`);
  need(
    figures.duplicatesWithoutPowerLoss === 0,
    `${figures.duplicatesWithoutPowerLoss} deliveries repeated without a power loss`,
  );
  need(figures.bad === 0, `${figures.bad} files in bad: ${figures.badFiles.join(", ")}`);
  need(figures.pending === 0, `${figures.pending} entries left queued or in progress`);
  need(figures.shunted === 0, `${figures.shunted} entries shunted`);
  need(figures.refusedStarts === 0, `${figures.refusedStarts} starts refused`);
  need(
    figures.lockMaxMs <= opts.startBoundMs,
    `a start waited ${figures.lockMaxMs} ms for the lock (bound ${opts.startBoundMs} ms)`,
  );
  need(figures.injectErrors.length === 0, `inject failed: ${figures.injectErrors.join("; ")}`);
  need(figures.stopExit === 0, `qrunner stop exited ${figures.stopExit}`);
  need(figures.acknowledged > 0 && figures.delivered > 0, "nothing was injected and delivered");
  figures.duplicateCauses = duplicates.causes;
  figures.failures = failures;
  return figures;
}

function report(f) {
  const rows = [
    [
      "power losses",
      `${f.powerLosses} (rounds ${f.rounds}; processes killed per cut: ${f.killedPerCut.join(", ")})`,
    ],
    [
      "posts",
      `${f.posts} through \`qrunner inject\`: ${f.acknowledged} acknowledged, ${f.unacknowledged} killed in flight (${f.unacknowledgedDelivered} of their pairs delivered)`,
    ],
    ["deliveries expected", `${f.expected} (${f.members} members in 3 lists)`],
    ["delivered", f.delivered],
    ["lost", f.lost],
    ["corrupt", f.corrupt],
    [
      "duplicates",
      `${f.duplicates} pairs in ${f.duplicateMessages} messages: ${f.duplicatesRedelivered} redelivered after a power loss that cut their finish, ${f.duplicatesResurrected} resurrected, ${f.duplicatesWithoutPowerLoss} without a power loss`,
    ],
    [
      "starts: ms to 'master starting'",
      `${f.starts.join(", ")} (max ${f.startMaxMs}; refused ${f.refusedStarts})`,
    ],
    ["starts: ms waiting for the lock", `${f.lockMs.join(", ")} (max ${f.lockMaxMs})`],
    ["left: bad, pending, shunted, tmp", `${f.bad}, ${f.pending}, ${f.shunted}, ${f.tmpLeft}`],
    ["crashes (unexpected worker exits)", f.crashes],
    ["seconds", f.seconds],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  process.stderr.write(`\n${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n")}\n`);
  for (const s of f.duplicateSample) process.stderr.write(`  duplicate ${s.key}: ${s.cause}\n`);
  process.stderr.write(
    f.failures.length ? `\nFAILED:\n  ${f.failures.join("\n  ")}\nwork dir kept: ${f.site}\n` : "\nPASSED\n",
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const opts = parseArgs(process.argv.slice(2));
  const why = lazyfsUnavailable(opts.lazyfs);
  if (why) {
    say(`skipped: ${why}`);
    process.exit(3);
  }
  if (process.argv.includes("--check")) process.exit(0);
  finish(runPowerLoss(opts), { report, json: opts.json, say });
}
