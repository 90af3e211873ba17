#!/usr/bin/env node
// The fault suite's driver. Posts to three lists flow through the whole daemon (`qrunner start`: the
// master and real workers) to three recording SMTP servers on loopback, while faults are injected in
// turn and together (see phases.js). At the end every (Message-ID, recipient) must have been delivered,
// duplicates are counted against the kills, and the queue directories must hold nothing in progress,
// nothing temporary, nothing in `bad`, and only shunted entries that carry a reason.
//
//   npm run build && node test/faults/run.js --scale=N [--seed=S] [--phase-ms=MS] [--json] [--keep]
//
// --scale=1 (CI) is about 60 posts and 800 deliveries in one cycle of the phases (~1.5 min);
// each step of the scale adds 60 posts, and every 4 add a cycle. Exit 0 when every check passes.
import { rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  archiveCounts,
  finish,
  missing,
  mergeDeliveries,
  pendingEntries,
  scanQueues,
  unexplainedTemps,
  verdict,
} from "./check.js";
import { LogTally, runCli, startMaster, workersOf } from "./daemon.js";
import { PHASES, killWorkers } from "./phases.js";
import { IN_FLIGHT, configText, makePost, makeSite, malformed, prng, writeConfig } from "./site.js";
import { startSink } from "./sink.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (msg) => process.stderr.write(`faults: ${msg}\n`);

export function parseArgs(argv) {
  const get = (name, dflt) => {
    const a = argv.find((x) => x.startsWith(`--${name}=`));
    return a ? a.slice(name.length + 3) : dflt;
  };
  const scale = Number(get("scale", "1"));
  return {
    scale,
    seed: Number(get("seed", String(Date.now() % 1e9))),
    phaseMs: Number(get("phase-ms", "6000")),
    cycles: Number(get("cycles", String(Math.max(1, Math.ceil(scale / 4))))),
    posts: Number(get("posts", String(60 * scale))),
    cliEvery: Number(get("cli-every", "8")),
    drainMs: Number(get("drain-ms", "240000")),
    repo: path.resolve(get("repo", fileURLToPath(new URL("../../", import.meta.url)))),
    json: argv.includes("--json"),
    keep: argv.includes("--keep"),
  };
}

export async function runFaults(opts) {
  const started = Date.now();
  const { injectMessage, InjectError } = await import(
    pathToFileURL(path.join(opts.repo, "dist/intake/inject.js")).href
  );
  const rnd = prng(opts.seed);
  const sinks = [await startSink("mx1"), await startSink("mx2"), await startSink("mx3")];
  const site = makeSite();
  const tally = new LogTally();
  const counts = {
    workerKills: 0,
    masterKills: 0,
    killsByRunner: {},
    faults: {},
    orphansLeft: 0,
    orphansAtRestart: 0,
    rejectedShownByStatus: 0,
    injected: 0,
    injectedByCli: 0,
    deferred75: 0,
    malformedTried: 0,
    malformedRefused: 0,
    injectErrors: [],
    unshunted: 0,
  };
  const h = {
    repo: opts.repo,
    site,
    sinks,
    sink: (name) => sinks.find((s) => s.name === name),
    tally,
    rnd: prng(opts.seed + 1),
    counts,
    kills: [],
    weights: [1, 2, 1],
    weightSet: 0,
    invalidNow: false,
    master: null,
    fault: (...names) => names.forEach((n) => (counts.faults[n] = (counts.faults[n] ?? 0) + 1)),
  };
  say(
    `site ${site.dir}, seed ${opts.seed}, ${opts.posts} posts, ${opts.cycles} cycle(s) of ${PHASES.length} phases x ${opts.phaseMs} ms`,
  );
  writeConfig(site, configText(sinks, h.weights));
  h.master = startMaster(opts.repo, site, tally);
  try {
    return await exercise(opts, h, started, rnd, InjectError, injectMessage);
  } catch (err) {
    // never leave a daemon behind: the master's workers first, then the master
    for (const w of workersOf(h.master.pid)) process.kill(w.pid, "SIGKILL");
    h.master.child.kill("SIGKILL");
    for (const s of sinks) await s.close();
    say(`site kept: ${site.dir}`);
    throw err;
  }
}

async function exercise(opts, h, started, rnd, InjectError, injectMessage) {
  const { site, sinks, tally, counts } = h;
  const readyBy = Date.now() + 30_000;
  while (tally.allReady === 0 && Date.now() < readyBy) await sleep(100);
  if (tally.allReady === 0) throw new Error(`the master did not get ready: ${h.master.stderr()}`);

  // ---- injection: spread evenly over the phases; 75 is retried as an MTA would
  const posts = new Map();
  const expected = new Map();
  const lists = site.lists;
  const totalMs = opts.cycles * PHASES.length * opts.phaseMs;
  const inFlight = new Set();
  const injectOne = async (raw, to, viaCli) => {
    if (viaCli) {
      const r = await runCli(opts.repo, ["inject", "-C", site.configFile, `--to=${to}`], { input: raw });
      return r.code;
    }
    try {
      await injectMessage(site.configFile, raw, { to });
      return 0;
    } catch (err) {
      if (err instanceof InjectError) return err.exitCode;
      counts.injectErrors.push(String(err));
      return 70;
    }
  };
  const deliverPost = async (post, viaCli) => {
    for (let attempt = 0; ; attempt++) {
      const code = await injectOne(post.raw, post.list, viaCli);
      if (code === 0) {
        counts.injected++;
        if (viaCli) counts.injectedByCli++;
        for (const r of post.recipients) expected.set(`${post.id} ${r}`, post);
        return;
      }
      if (code === 75 && attempt < 200) {
        counts.deferred75++;
        await sleep(500);
        continue;
      }
      counts.injectErrors.push(`post ${post.n}: inject exited ${code}`);
      return;
    }
  };
  const tryMalformed = async (n) => {
    const viaCli = n % 3 === 0;
    counts.malformedTried++;
    let code = await injectOne(malformed(n, rnd), lists[0].address, viaCli);
    // 65 is decided before the config is read, so even an invalid edit cannot turn it into 75
    for (let i = 0; code === 75 && i < 200; i++)
      code = await injectOne(malformed(n, rnd), lists[0].address, viaCli);
    if (code === 65) counts.malformedRefused++;
    else counts.injectErrors.push(`malformed input ${n}: inject exited ${code}, not 65`);
  };
  const injector = (async () => {
    const t0 = Date.now();
    for (let n = 0; n < opts.posts; n++) {
      const due = t0 + (n * totalMs) / opts.posts;
      if (due > Date.now()) await sleep(due - Date.now());
      const post = makePost(opts.seed, n, lists[n % lists.length], rnd);
      posts.set(post.id, post);
      const viaCli = opts.cliEvery > 0 && n % opts.cliEvery === 0;
      const p = deliverPost(post, viaCli).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (n % 10 === 5) {
        const m = tryMalformed(n).finally(() => inFlight.delete(m));
        inFlight.add(m);
      }
      while (inFlight.size >= 6) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  })();

  // ---- faults, in turn and together
  for (let c = 0; c < opts.cycles; c++) {
    for (const phase of PHASES) {
      say(`cycle ${c + 1}/${opts.cycles}: ${phase.name}`);
      const end = Date.now() + opts.phaseMs;
      await phase.start?.(h);
      const killer = phase.kills ? killWorkers(h, () => Date.now() >= end) : null;
      const left = end - Date.now();
      if (left > 0) await sleep(left);
      await killer;
      await phase.stop?.(h);
    }
  }
  await injector;
  say(`faults lifted; ${counts.injected} posts injected; draining`);

  // ---- drain: everything expected delivered and the working queues empty
  const drainEnd = Date.now() + opts.drainMs;
  let unshuntDone = false;
  for (;;) {
    const scan = scanQueues(site.qfiles);
    const left = missing(expected, mergeDeliveries(sinks));
    if (left === 0 && pendingEntries(scan) === 0) break;
    // entries that crashed their runner too often were shunted as poison: an operator unshunts them
    if (!unshuntDone && pendingEntries(scan) === 0 && (scan.shunt?.qf ?? 0) > 0) {
      unshuntDone = true;
      const u = await runCli(opts.repo, ["queue", "unshunt", "-C", site.configFile]);
      counts.unshunted = Number(/^(\d+) entr/m.exec(u.stdout)?.[1] ?? 0);
      say(`queue unshunt: ${u.stdout.trim().split("\n").at(-1) ?? u.stderr.trim()}`);
    }
    if (Date.now() > drainEnd) {
      say(`drain timed out: ${left} pairs missing, ${pendingEntries(scan)} entries pending`);
      break;
    }
    await sleep(250);
  }
  const status = await runCli(opts.repo, ["status", "--json", "-C", site.configFile]);
  let workers = [];
  try {
    workers = JSON.parse(status.stdout).workers ?? [];
  } catch {
    // no status: reported as such below
  }
  const stop = await runCli(opts.repo, ["stop", "-C", site.configFile]);
  await h.master.exited;
  for (const s of sinks) await s.close();

  // ---- the verdict
  const scan = scanQueues(site.qfiles);
  const v = verdict({ expected, posts, sinks, kills: h.kills });
  const { listQueue } = await import(pathToFileURL(path.join(opts.repo, "dist/queue/inspect.js")).href);
  const shunt = await listQueue(site.qfiles, "shunt");
  const archived = archiveCounts(site.state, lists[0].address);
  const devPosts = [...posts.values()].filter(
    (p) => p.list === lists[0].address && expected.has(`${p.id} ${p.recipients[0]}`),
  );
  const kills = counts.workerKills + counts.masterKills;
  const figures = {
    seed: opts.seed,
    scale: opts.scale,
    seconds: Math.round((Date.now() - started) / 1000),
    messages: counts.injected,
    injectedByCli: counts.injectedByCli,
    members: lists.reduce((n, l) => n + l.members.length, 0),
    lists: lists.length,
    kills,
    workerKills: counts.workerKills,
    masterKills: counts.masterKills,
    killsByRunner: counts.killsByRunner,
    faultsInjected: Object.values(counts.faults).reduce((a, b) => a + b, 0) + kills,
    faults: counts.faults,
    expected: v.expected,
    delivered: v.delivered,
    duplicates: v.duplicatePairs,
    duplicateMessages: v.duplicateMessages,
    duplicatesAllowed: Object.entries(counts.killsByRunner).reduce(
      (n, [r, k]) => n + k * (IN_FLIGHT[r] ?? 0),
      0,
    ),
    unexplainedDuplicates: v.unexplainedDuplicates,
    duplicatesNearMasterKill: v.duplicatesNearMasterKill,
    maxCopies: v.maxCopies,
    duplicateSample: v.dupSample,
    lost: v.lost,
    lostSample: v.lostKeys,
    corrupted: v.corrupted,
    stray: v.stray,
    malformedTried: counts.malformedTried,
    malformedRefused65: counts.malformedRefused,
    deferred75: counts.deferred75,
    injectErrors: counts.injectErrors.slice(0, 20),
    crashes: tally.crashes.length + counts.injectErrors.length,
    crashSample: tally.crashes.slice(0, 10),
    stalls: tally.stalls.length,
    restarts: tally.restarts,
    restartsLastMaster: workers.reduce((n, w) => n + (w.restarts ?? 0), 0),
    orphansLeft: counts.orphansLeft,
    orphansAtRestart: counts.orphansAtRestart,
    rejectedEdits: tally.rejectedEdits,
    rejectedShownByStatus: counts.rejectedShownByStatus,
    reloads: tally.reloads,
    unshunted: counts.unshunted,
    shunted: shunt.length,
    shuntedWithoutReason: shunt.filter((e) => !e.meta?.shuntReason).length,
    shuntReasons: [...new Set(shunt.map((e) => e.meta?.shuntReason ?? "(none)"))].slice(0, 10),
    wip: Object.values(scan).reduce((n, c) => n + c.wip, 0),
    tmp: Object.values(scan).reduce((n, c) => n + c.tmp, 0),
    tmpFiles: Object.values(scan)
      .flatMap((c) => c.tmps)
      .slice(0, 10),
    tmpUnexplained: unexplainedTemps(scan, h.kills).length,
    pending: pendingEntries(scan),
    bad: (scan.bad?.qf ?? 0) + (scan.bad?.wip ?? 0) + (scan.bad?.tmp ?? 0) + (scan.bad?.other ?? 0),
    archiveMissing: devPosts.filter((p) => !archived.has(p.id)).length,
    archiveDuplicates: [...archived.values()].filter((c) => c > 1).length,
    stopExit: stop.code,
    sinks: Object.fromEntries(sinks.map((s) => [s.name, { ...s.stats }])),
  };
  const failures = [];
  const need = (ok, what) => ok || failures.push(what);
  need(figures.lost === 0, `${figures.lost} (message, recipient) pairs lost`);
  need(figures.corrupted === 0, `${figures.corrupted} messages delivered with other bytes than injected`);
  // Duplicates by design come only from a worker killed with entries in hand: an entry whose SMTP
  // transaction (or, in incoming, whose fan-out) was done but not yet finished is recovered and handled
  // again. So at most IN_FLIGHT[runner] messages per kill of an incoming, outgoing or backoff worker;
  // none for archive, bounce and command (their entries are not posts' deliveries), and none for a
  // master kill (its orphaned workers finish what they hold, and the new master waits for them before
  // starting its own: test/faults/orphans.test.ts). Each duplicate must also have a kill nearby.
  need(
    figures.duplicateMessages <= figures.duplicatesAllowed,
    `${figures.duplicateMessages} duplicated messages, ${figures.duplicatesAllowed} allowed by the kills ${JSON.stringify(counts.killsByRunner)}`,
  );
  need(
    figures.unexplainedDuplicates === 0,
    `${figures.unexplainedDuplicates} duplicates without a kill nearby`,
  );
  need(figures.wip === 0, `${figures.wip} entries left in progress`);
  // a writer SIGKILLed between open and rename leaves its temp file (see docs/reliability.md): that
  // is litter, not an entry; any other temp file fails the run
  need(figures.tmpUnexplained === 0, `${figures.tmpUnexplained} temporary files left that no kill explains`);
  need(figures.pending === 0, `${figures.pending} entries left queued`);
  need(figures.bad === 0, `${figures.bad} files in bad`);
  need(
    figures.shuntedWithoutReason === 0,
    `${figures.shuntedWithoutReason} shunted entries without a reason`,
  );
  need(figures.crashes === 0, `${figures.crashes} crashes`);
  need(figures.malformedRefused65 === figures.malformedTried, "malformed input not refused with 65");
  need(figures.stopExit === 0, `qrunner stop exited ${figures.stopExit}`);
  need(figures.archiveMissing === 0 && figures.archiveDuplicates === 0, "archive not exactly once");
  need(counts.faults["invalid edit"] === undefined || figures.rejectedEdits > 0, "invalid edit not rejected");
  figures.failures = failures;
  figures.site = opts.keep || failures.length ? site.dir : null;
  if (!opts.keep && failures.length === 0) rmSync(site.dir, { recursive: true, force: true });
  return figures;
}

function report(f) {
  const rows = [
    ["messages (posts injected)", `${f.messages} (${f.injectedByCli} by \`qrunner inject\` processes)`],
    ["members", `${f.members} in ${f.lists} lists`],
    ["kills", `${f.kills} (${f.workerKills} workers, ${f.masterKills} master)`],
    [
      "faults injected",
      `${f.faultsInjected} (${Object.entries(f.faults)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}, and the kills)`,
    ],
    ["deliveries expected", f.expected],
    ["delivered", f.delivered],
    [
      "duplicates",
      `${f.duplicates} pairs in ${f.duplicateMessages} messages (max copies ${f.maxCopies}; ${f.duplicatesNearMasterKill} near a master kill; ${f.unexplainedDuplicates} without a kill nearby)`,
    ],
    ["lost", f.lost],
    ["malformed inputs tried", `${f.malformedTried} (${f.malformedRefused65} refused with 65)`],
    ["crashes", `${f.crashes} (stalls ${f.stalls})`],
    ["worker restarts (by the masters)", f.restarts],
    ["inject deferred with 75", f.deferred75],
    ["shunted / unshunted", `${f.shunted} / ${f.unshunted}`],
    ["left: wip, queued, bad", `${f.wip}, ${f.pending}, ${f.bad}`],
    ["left: tmp (of killed writers)", `${f.tmp} (${f.tmp - f.tmpUnexplained})`],
    ["orphaned workers at restart", f.orphansAtRestart],
    [
      "SMTP servers",
      Object.entries(f.sinks)
        .map(
          ([n, s]) =>
            `${n}: ${s.deliveries} accepted, ${s.greeted4xx} 421, ${s.data4xx} 451, ${s.dropped} dropped, ${s.delayed} slow`,
        )
        .join("; "),
    ],
    ["seconds", f.seconds],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  process.stderr.write(`\n${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n")}\n`);
  process.stderr.write(
    f.failures.length ? `\nFAILED:\n  ${f.failures.join("\n  ")}\nsite kept: ${f.site}\n` : "\nPASSED\n",
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const opts = parseArgs(process.argv.slice(2));
  finish(runFaults(opts), { report, json: opts.json, say });
}
