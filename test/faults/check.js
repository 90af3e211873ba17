// The fault suite's verdict: what the sinks received against what was injected, what the queue
// directories hold at the end, and what the archive holds.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

const WORK_QUEUES = ["incoming", "outgoing", "bounce", "command", "archive", "backoff"];

/** Every file of every queue directory, by queue and by state (qf, wip, tmp, other). */
export function scanQueues(qfiles) {
  const out = {};
  let dirs = [];
  try {
    dirs = readdirSync(qfiles, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return out;
  }
  for (const q of dirs) {
    const c = { qf: 0, wip: 0, tmp: 0, other: 0, names: [], tmps: [] };
    for (const name of readdirSync(path.join(qfiles, q))) {
      const ext = /\.(qf|wip|tmp)$/.exec(name)?.[1] ?? "other";
      c[ext]++;
      c.names.push(name);
      if (ext === "tmp") {
        const st = statSync(path.join(qfiles, q, name), { throwIfNoEntry: false });
        if (st) c.tmps.push({ name: `${q}/${name}`, mtime: st.mtimeMs, size: st.size });
      }
    }
    out[q] = c;
  }
  return out;
}

/** Entries still to do in the working queues (queued or in progress). */
export function pendingEntries(scan) {
  return WORK_QUEUES.reduce((n, q) => n + (scan[q]?.qf ?? 0) + (scan[q]?.wip ?? 0), 0);
}

/** Every (Message-ID recipient) accepted by any sink, with the acceptance times, oldest first. */
export function mergeDeliveries(sinks) {
  const all = new Map();
  for (const s of sinks) {
    for (const [key, times] of s.accepted) {
      const t = all.get(key);
      if (t) t.push(...times);
      else all.set(key, [...times]);
    }
  }
  for (const t of all.values()) t.sort((a, b) => a - b);
  return all;
}

/** The (message, recipient) pairs still missing: what `lost` will be if the run ends now. */
export function missing(expected, deliveries) {
  let n = 0;
  for (const key of expected.keys()) if (!deliveries.has(key)) n++;
  return n;
}

/**
 * Compare. A duplicate is "explained" when a kill (of a worker or the master) fell shortly before or
 * after the first acceptance: between the server's acceptance and the entry's finish, as the suite
 * allows. `windowBeforeMs` covers a slow server that accepted after the client was killed and an
 * incoming worker killed after its fan-out, whose successors were delivered later.
 */
export function verdict({ expected, posts, sinks, kills, windowBeforeMs = 30_000, windowAfterMs = 5_000 }) {
  const deliveries = mergeDeliveries(sinks);
  const killTimes = kills.map((k) => k.at).sort((a, b) => a - b);
  const lostKeys = [];
  let delivered = 0;
  let duplicatePairs = 0;
  let unexplained = 0;
  let maxCopies = 0;
  let nearMasterKill = 0;
  const masterKills = kills.filter((k) => k.runner === "master").map((k) => k.at);
  const dupMessages = new Set();
  const dupSample = [];
  for (const key of expected.keys()) {
    const times = deliveries.get(key);
    if (!times) {
      lostKeys.push(key);
      continue;
    }
    delivered++;
    maxCopies = Math.max(maxCopies, times.length);
    if (times.length > 1) {
      duplicatePairs += times.length - 1;
      dupMessages.add(key.split(" ")[0]);
      const first = times[0];
      const explained = killTimes.some((t) => t >= first - windowBeforeMs && t <= first + windowAfterMs);
      if (!explained) unexplained++;
      if (masterKills.some((t) => t >= first - windowBeforeMs && t <= first + windowAfterMs))
        nearMasterKill++;
      if (dupSample.length < 10)
        dupSample.push({
          key,
          at: sinks.flatMap((s) =>
            (s.accepted.get(key) ?? []).map((t) => `${s.name}@${new Date(t).toISOString().slice(11, 23)}`),
          ),
          kills: kills
            .filter((k) => k.at >= first - windowBeforeMs && k.at <= times.at(-1))
            .map((k) => `${k.runner}@${new Date(k.at).toISOString().slice(11, 23)}`),
        });
    }
  }
  let stray = 0;
  for (const [key, times] of deliveries) if (!expected.has(key)) stray += times.length;
  // bodies: each message must arrive with exactly the body it was injected with
  let corrupted = 0;
  for (const p of posts.values()) {
    const seen = new Set();
    for (const s of sinks) for (const h of s.bodies.get(p.id) ?? []) seen.add(h);
    if (seen.size > 1 || (seen.size === 1 && !seen.has(p.bodyHash))) corrupted++;
  }
  return {
    expected: expected.size,
    delivered,
    lost: lostKeys.length,
    lostKeys: lostKeys.slice(0, 20),
    duplicatePairs,
    duplicateMessages: dupMessages.size,
    unexplainedDuplicates: unexplained,
    duplicatesNearMasterKill: nearMasterKill,
    maxCopies,
    dupSample,
    stray,
    corrupted,
  };
}

/** The archived copies of each post of a list: Message-ID -> count, over every month's mbox. */
export function archiveCounts(stateDir, list) {
  const dir = path.join(stateDir, "archives", list.toLowerCase());
  const counts = new Map();
  if (!existsSync(dir)) return counts;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".mbox")) continue;
    const text = readFileSync(path.join(dir, f), "latin1");
    for (const m of text.matchAll(/^Message-ID: (<[^>\n]+>)$/gim))
      counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
  }
  return counts;
}

/**
 * Temp files whose writer was not killed: a temp file is left behind only when the process writing
 * it died before the rename (recovery removes such files once they are 10 minutes old). One that no
 * kill explains (none within 5 s after its last write) is a writer that gave up without cleaning up.
 */
export function unexplainedTemps(scan, kills) {
  const all = Object.values(scan).flatMap((c) => c.tmps);
  return all.filter((t) => !kills.some((k) => k.at >= t.mtime - 50 && k.at <= t.mtime + 5000));
}

/**
 * The end of a driver run from the command line: print the report (and the figures as one JSON line
 * with --json); exit 0 when every check passed, 1 when one failed, 2 when the run itself failed.
 */
export function finish(run, { report, json, say }) {
  run.then(
    (f) => {
      report(f);
      if (json) process.stdout.write(JSON.stringify(f) + "\n");
      process.exit(f.failures.length ? 1 : 0);
    },
    (err) => {
      say(`error: ${err?.stack ?? err}`);
      process.exit(2);
    },
  );
}
