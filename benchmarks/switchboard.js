// Switchboard benchmarks, side by side in one run on the same disk:
//  - durable enqueue against a plain write+fsync+rename loop, and against Mailman 3's own Switchboard
//    (../shared/peers/bench_mailman_switchboard.py, run in the same run on the same disk);
//  - dequeue+finish (drain) against a plain rename+read+unlink loop and Mailman's drain;
//  - the cost of one dequeue+finish as the backlog grows (1k, 100k, 200k; 1M with --full).
// Every Switchboard here runs without its spare pool (spares: false): it creates and unlinks a file
// per entry like the plain loops, so the ratios compare the same filesystem work. Recycling is
// measured end to end (e2e.js), where a running daemon has finished entries to recycle, and on and off
// side by side per filesystem in spares.js.
//
//   node benchmarks/switchboard.js [--quick] [--full] [--json] [--n=5000] [--rounds=2]
//        [--backlog=1000,100000,200000] [--ops=20000 (100000 with --full)] [--dir=PATH] [--no-peers]
import { Buffer } from "node:buffer";
import { execFileSync } from "node:child_process";
import {
  openSync,
  writeSync,
  fsyncSync,
  closeSync,
  renameSync,
  writeFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  unlinkSync,
} from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Switchboard } from "../dist/queue/switchboard.js";
import { encodeEntry } from "../dist/queue/entry.js";
import {
  PEERS,
  PY,
  arg,
  benchDir,
  emit,
  flag,
  fmt,
  havePeer,
  isMain,
  log,
  median,
  now,
  num,
  runPeer,
  spread,
  table,
  target,
  targetsTable,
  waitQuiet,
  QUICK,
  FULL,
  benchMessage as message,
  benchMeta as meta,
  rate,
} from "./lib.js";

const sync = () => execFileSync("sync");

// Each method is a generator of steps: run(k) does its next k operations and returns. The driver
// rotates through the methods in chunks, so that the disk's drift (fsync latency on a shared virtual
// disk moves by 2x within seconds) hits every method alike; each method's rate is its ops / its time.

/** The floor for a durable queue: write, fsync the file, rename; no directory fsync (Mailman's way). */
function plainWriter(dir, dirSync = false) {
  mkdirSync(dir, { recursive: true });
  let i = 0;
  return async (k) => {
    for (const end = i + k; i < end; i++) {
      const base = path.join(dir, String(i).padStart(8, "0"));
      const fd = openSync(base + ".tmp", "w", 0o600);
      writeSync(fd, message);
      fsyncSync(fd);
      closeSync(fd);
      renameSync(base + ".tmp", base + ".qf");
      if (dirSync) {
        const d = openSync(dir, "r");
        fsyncSync(d);
        closeSync(d);
      }
    }
  };
}

/** The floor for a drain: list once, then rename to .wip, read, unlink each file. */
function plainDrainer(dir) {
  let names = null;
  let i = 0;
  return async (k) => {
    names ??= readdirSync(dir)
      .filter((x) => x.endsWith(".qf"))
      .sort();
    for (const end = Math.min(names.length, i + k); i < end; i++) {
      const wip = path.join(dir, names[i].replace(/\.qf$/, ".wip"));
      renameSync(path.join(dir, names[i]), wip);
      readFileSync(wip);
      unlinkSync(wip);
    }
  };
}

async function seqWriter(root, queue) {
  const sb = await Switchboard.open({ root, queue, spares: false });
  return async (k) => {
    for (let i = 0; i < k; i++) await sb.enqueue(message, meta);
  };
}

async function concWriter(root, queue, producers) {
  const sb = await Switchboard.open({ root, queue, spares: false });
  return async (k) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: producers }, async () => {
        while (next < k) {
          next++;
          await sb.enqueue(message, meta);
        }
      }),
    );
  };
}

async function batchWriter(root, queue, size) {
  const sb = await Switchboard.open({ root, queue, spares: false });
  return async (k) => {
    for (let i = 0; i < k; i += size)
      await sb.enqueueMany(Array.from({ length: Math.min(size, k - i) }, () => ({ message, meta })));
  };
}

/** dequeue+finish, one Switchboard per slice, run concurrently (k entries in all per step). */
async function sbDrainer(root, queue, slices = [undefined]) {
  const sbs = await Promise.all(
    slices.map((slice) => Switchboard.open({ root, queue, spares: false, ...(slice ? { slice } : {}) })),
  );
  return async (k) => {
    let left = k;
    await Promise.all(
      sbs.map(async (sb) => {
        while (left > 0) {
          left--;
          const e = await sb.dequeue();
          if (!e) return;
          await sb.finish(e);
        }
      }),
    );
  };
}

/** Rotate through the methods `chunk` ops at a time until each did n; returns each method's ops/s. */
async function interleave(methods, n, chunk) {
  const ms = methods.map(() => 0);
  for (let done = 0, r = 0; done < n; done += chunk, r++) {
    const k = Math.min(chunk, n - done);
    for (let j = 0; j < methods.length; j++) {
      const m = (j + r) % methods.length; // rotate the order too
      const t = now();
      await methods[m](k);
      ms[m] += now() - t;
    }
  }
  return ms.map((t) => rate(n, t));
}

/** Fill a queue fast for the backlog test (setup, not measured): entry files written without fsync. */
function fill(dir, count) {
  mkdirSync(dir, { recursive: true });
  const bufs = Buffer.concat(
    encodeEntry({ version: 1, ...meta, received: 0, attempts: 0, failures: [], recoveries: 0 }, message),
  );
  const t = 1_700_000_000;
  for (let i = 0; i < count; i++) {
    const secs = t + Math.floor(i / 1000);
    const name = `${secs}.${String(i % 1000).padStart(6, "0")}+${randomBytes(20).toString("hex")}.qf`;
    writeFileSync(path.join(dir, name), bufs);
  }
}

/**
 * Cost of dequeue+finish with `backlog` entries queued: qrunner's first call (which lists), its mean
 * over k calls (that first pass included), then a plain sync loop on the same directory (one listing
 * included) as the filesystem's own cost at that size, then qrunner's next k calls (steady state).
 */
async function backlogCost(root, backlog, ops) {
  const queue = `b${backlog}`;
  const dir = path.join(root, queue);
  const t = now();
  fill(dir, backlog);
  sync();
  log(`backlog ${backlog}: filled in ${fmt((now() - t) / 1000, 1)} s`);
  const machine = await waitQuiet(Number(arg("quiet-wait", 30)));
  const sb = await Switchboard.open({ root, queue, spares: false });
  const k = Math.max(1, Math.min(ops, Math.floor(backlog / 3)));
  const t0 = now();
  await sb.finish(await sb.dequeue());
  const first = now() - t0;
  for (let i = 1; i < k; i++) await sb.finish(await sb.dequeue());
  const mean = ((now() - t0) * 1000) / k;
  // plain, on the entries qrunner's batch will come to last (the newest), so both stay out of each other's way
  const t1 = now();
  const names = readdirSync(dir)
    .filter((x) => x.endsWith(".qf"))
    .sort()
    .slice(-k);
  for (const name of names) {
    const wip = path.join(dir, name.replace(/\.qf$/, ".wip"));
    renameSync(path.join(dir, name), wip);
    readFileSync(wip);
    unlinkSync(wip);
  }
  const plain = ((now() - t1) * 1000) / k;
  const t2 = now();
  for (let i = 0; i < k; i++) await sb.finish(await sb.dequeue());
  const steady = ((now() - t2) * 1000) / k;
  return { backlog, ops: k, first_ms: first, mean_us: mean, plain_us: plain, steady_us: steady, ...machine };
}

export async function main() {
  const N = num("n", 5000, 1000);
  const rounds = num("rounds", 2, 1);
  const backlogs = arg("backlog", FULL ? "1000,100000,1000000" : QUICK ? "1000,100000" : "1000,100000,200000")
    .split(",")
    .map(Number);
  // enough calls that one listing pass is shared as in a running worker (a pass serves up to 250k)
  const ops = num("ops", FULL ? 100000 : 20000, 5000);
  const peers = !flag("no-peers") && havePeer("mailman");
  if (!flag("no-peers") && !peers)
    log("Mailman 3 not installed (bash ../shared/peers/install.sh): no Mailman figures");
  const { dir, cleanup } = benchDir("qrunner-bench-sb-");
  const fsType = execFileSync("stat", ["-f", "-c", "%T", dir], { encoding: "utf8" }).trim();
  try {
    const R = {
      plain: [],
      plainDir: [],
      seq: [],
      conc: [],
      batch: [],
      plainDrain: [],
      drain: [],
      drain4: [],
      mm: [],
    };
    const quiet = [];
    // interleave plain, qrunner and Mailman runs so drift on a shared machine hits them alike
    const chunk = num("chunk", 100);
    const { makeSlice } = await import("../dist/queue/slice.js");
    for (let r = 0; r < rounds; r++) {
      log(
        `switchboard round ${r + 1}/${rounds}: N=${N} in ${dir} (${fsType}), interleaved in chunks of ${chunk}`,
      );
      quiet.push(await waitQuiet());
      const [plain, plainDir, seq, conc, batch] = await interleave(
        [
          plainWriter(path.join(dir, `plain${r}`)),
          plainWriter(path.join(dir, `plaind${r}`), true),
          await seqWriter(dir, `seq${r}`),
          await concWriter(dir, `conc${r}`, 16),
          await batchWriter(dir, `batch${r}`, 100),
        ],
        N,
        chunk,
      );
      Object.entries({ plain, plainDir, seq, conc, batch }).forEach(([k, v]) => R[k].push(v));
      sync();
      const [pd, d1, d4] = await interleave(
        [
          plainDrainer(path.join(dir, `plain${r}`)),
          await sbDrainer(dir, `seq${r}`),
          await sbDrainer(
            dir,
            `conc${r}`,
            [0, 1, 2, 3].map((k) => makeSlice(k, 4)),
          ),
        ],
        N,
        chunk,
      );
      R.plainDrain.push(pd);
      R.drain.push(d1);
      R.drain4.push(d4);
      execFileSync("rm", [
        "-rf",
        ...["plain", "plaind", "seq", "conc", "batch"].map((q) => path.join(dir, `${q}${r}`)),
      ]);
      if (peers) {
        // Mailman's own script in the same round, then a plain loop right after it as its yardstick
        const m = await runPeer("mailman-switchboard", PY, [
          path.join(PEERS, "bench_mailman_switchboard.py"),
          "-n",
          String(N),
          "--dir",
          dir,
          "--quiet-wait",
          "0",
        ]);
        const [after] = await interleave(
          [plainWriter(path.join(dir, `plainmm${r}`))],
          Math.min(N, 1000),
          chunk,
        );
        execFileSync("rm", ["-rf", path.join(dir, `plainmm${r}`)]);
        if (m) R.mm.push({ ...m, plain_after_per_s: after });
      }
    }
    // ratios: per round (same round, interleaved), then the median over rounds
    const ratio = (xs, base) => median(xs.map((x, i) => x / base[i]));
    const mmEnq = R.mm.map((m) => m.enqueue_msgs_per_s);
    const mmPlain = R.mm.map((m) => m.plain_after_per_s);
    const mmRound = (xs) => R.mm.map((m, i) => xs[i]);
    const row = (what, xs, base, mm) => [
      what,
      spread(xs),
      fmt(ratio(xs, base)),
      mm && mm.length ? fmt(ratio(mmRound(xs), mm)) : "-",
    ];
    table(
      `Durable enqueue, ${N} x 3 KB entries, ${rounds} round(s) interleaved: entries/s median (min..max); ratios: median of per-round ratios (${dir}, ${fsType})`,
      ["what", "entries/s", "vs plain", "vs Mailman"],
      [
        row("plain write+fsync+rename loop (no dir fsync)", R.plain, R.plain, mmEnq),
        row("plain loop + dir fsync per entry (sync calls)", R.plainDir, R.plain, mmEnq),
        row("qrunner enqueue, one at a time (file + dir fsync)", R.seq, R.plain, mmEnq),
        row("qrunner enqueue, 16 producers (group commit)", R.conc, R.plain, mmEnq),
        row("qrunner enqueueMany, 100 per call (fan-out)", R.batch, R.plain, mmEnq),
        ...(R.mm.length
          ? [
              [
                "Mailman 3 Switchboard.enqueue (file fsync, no dir fsync), own process",
                spread(mmEnq),
                `${fmt(ratio(mmEnq, mmPlain))} (of a plain loop run right after it)`,
                "1.00",
              ],
            ]
          : []),
      ],
    );
    const mmDrain = R.mm.map((m) => m.drain_1slice_msgs_per_s);
    const mmDrain4 = R.mm.map((m) => m.drain_4slices_par_msgs_per_s);
    table(
      `dequeue+finish until empty, ${N} entries (files synced, caches warm), interleaved`,
      ["what", "entries/s", "vs plain", "vs Mailman"],
      [
        row("plain: list once, rename+read+unlink loop (sync calls)", R.plainDrain, R.plainDrain, mmDrain),
        row("qrunner dequeue+finish, 1 slice", R.drain, R.plainDrain, mmDrain),
        row("qrunner dequeue+finish, 4 slices concurrently in 1 process", R.drain4, R.plainDrain, mmDrain4),
        ...(R.mm.length
          ? [
              ["Mailman 3 dequeue+finish, 1 slice, own process", spread(mmDrain), "-", "1.00"],
              ["Mailman 3 dequeue+finish, 4 slices in 4 processes", spread(mmDrain4), "-", "1.00"],
            ]
          : []),
      ],
    );

    const costs = [];
    for (const b of backlogs) {
      costs.push(await backlogCost(dir, b, ops));
      // free the disk for the next size
      execFileSync("rm", ["-rf", path.join(dir, `b${b}`)]);
    }
    const base = costs[0].mean_us;
    table(
      "dequeue+finish cost by backlog: mean over k calls incl. the first (listing) call; steady = the next k calls; plain = sync rename+read+unlink incl. one listing",
      [
        "entries queued",
        "ops",
        "first call ms",
        "mean µs",
        "ratio to first row",
        "steady µs",
        "plain sync loop µs",
        "plain ratio",
      ],
      costs.map((c) => [
        c.backlog,
        c.ops,
        fmt(c.first_ms, 1),
        fmt(c.mean_us, 1),
        fmt(c.mean_us / base),
        fmt(c.steady_us, 1),
        fmt(c.plain_us, 1),
        fmt(c.plain_us / costs[0].plain_us),
      ]),
    );
    const backlogRatio = costs.at(-1).mean_us / base;
    const targets = [
      target("enqueue one at a time vs plain loop", ratio(R.seq, R.plain), ">=", 0.8, "x"),
      target("enqueue with group commit (16 producers) vs plain loop", ratio(R.conc, R.plain), ">=", 1, "x"),
      ...(R.mm.length
        ? [target("enqueue one at a time vs Mailman 3", ratio(mmRound(R.seq), mmEnq), ">=", 1, "x")]
        : []),
      ...(R.mm.length
        ? [target("dequeue+finish (1 slice) vs Mailman 3", ratio(mmRound(R.drain), mmDrain), ">=", 1, "x")]
        : []),
      target(
        `dequeue+finish, ${costs.at(-1).backlog} queued vs ${costs[0].backlog}`,
        backlogRatio,
        "<=",
        1.5,
        "x",
      ),
    ];
    targetsTable("Switchboard: targets", targets);
    emit("switchboard", {
      n: N,
      rounds,
      dir,
      fs: fsType,
      machine: quiet,
      plain_per_s: R.plain,
      enqueue_seq_per_s: R.seq,
      enqueue_16_per_s: R.conc,
      enqueue_batch100_per_s: R.batch,
      plain_drain_per_s: R.plainDrain,
      drain_per_s: R.drain,
      drain_4slices_per_s: R.drain4,
      mailman: R.mm.map((m) => ({
        enqueue_msgs_per_s: m.enqueue_msgs_per_s,
        enqueue_nofsync_msgs_per_s: m.enqueue_nofsync_msgs_per_s,
        drain_1slice_msgs_per_s: m.drain_1slice_msgs_per_s,
        drain_4slices_par_msgs_per_s: m.drain_4slices_par_msgs_per_s,
        list_full_ms: m.list_full_ms,
        plain_after_per_s: m.plain_after_per_s,
      })),
      plain_dirsync_per_s: R.plainDir,
      ratio_seq: ratio(R.seq, R.plain),
      ratio_group: ratio(R.conc, R.plain),
      ratio_batch: ratio(R.batch, R.plain),
      ratio_seq_vs_mailman: R.mm.length ? ratio(mmRound(R.seq), mmEnq) : null,
      ratio_drain_vs_mailman: R.mm.length ? ratio(mmRound(R.drain), mmDrain) : null,
      backlog: costs,
      backlog_ratio: backlogRatio,
      targets,
    });
  } finally {
    cleanup();
  }
}

if (isMain(import.meta.url)) await main();
