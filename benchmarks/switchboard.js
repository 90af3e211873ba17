// Switchboard benchmarks: durable enqueue against a plain write+fsync+rename loop on the same disk,
// and the cost of dequeue+finish as the backlog grows. Ratios are measured side by side in one run.
import { openSync, writeSync, fsyncSync, closeSync, renameSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Switchboard } from "../dist/queue/switchboard.js";
import { encodeEntry } from "../dist/queue/entry.js";
import { arg, benchDir, emit, fmt, now, table } from "./lib.js";

const N = Number(arg("n", 2000));
const BACKLOG = (arg("backlog", "1000,200000")).split(",").map(Number);
const message = Buffer.concat([Buffer.from("From: a@example.net\nTo: dev@example.org\nSubject: bench\n\n"), Buffer.alloc(2940, "x")]);
const meta = { sender: "a@example.net", recipients: ["dev@example.org"] };

async function plainLoop(dir, n) {
  mkdirSync(dir, { recursive: true });
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const tmp = path.join(dir, `${i}.tmp`);
    const fd = openSync(tmp, "w", 0o600);
    writeSync(fd, message);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path.join(dir, `${i}.qf`));
  }
  return (n / (now() - t0)) * 1000;
}

async function sequential(root, n) {
  const sb = await Switchboard.open({ root, queue: "seq" });
  const t0 = now();
  for (let i = 0; i < n; i++) await sb.enqueue(message, meta);
  return (n / (now() - t0)) * 1000;
}

async function concurrent(root, n, producers) {
  const sb = await Switchboard.open({ root, queue: `conc${producers}` });
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: producers }, async () => {
      while (next < n) {
        next++;
        await sb.enqueue(message, meta);
      }
    }),
  );
  return (n / (now() - t0)) * 1000;
}

async function batched(root, n, size) {
  const sb = await Switchboard.open({ root, queue: `batch${size}` });
  const t0 = now();
  for (let i = 0; i < n; i += size)
    await sb.enqueueMany(Array.from({ length: Math.min(size, n - i) }, () => ({ message, meta })));
  return (n / (now() - t0)) * 1000;
}

/** Fill a queue fast for the backlog test (setup, not measured): entry files written without fsync. */
function fill(dir, count) {
  mkdirSync(dir, { recursive: true });
  const bufs = Buffer.concat(encodeEntry({ version: 1, ...meta, received: 0, attempts: 0, failures: [], recoveries: 0 }, message));
  const t = 1_700_000_000;
  for (let i = 0; i < count; i++) {
    const secs = t + Math.floor(i / 1000);
    const name = `${secs}.${String(i % 1000).padStart(6, "0")}+${randomBytes(20).toString("hex")}.qf`;
    writeFileSync(path.join(dir, name), bufs);
  }
}

async function drainCost(root, backlog, ops) {
  fill(path.join(root, `b${backlog}`), backlog);
  const sb = await Switchboard.open({ root, queue: `b${backlog}` });
  const k = Math.min(ops, backlog);
  const t0 = now();
  for (let i = 0; i < k; i++) {
    const e = await sb.dequeue();
    await sb.finish(e);
  }
  return ((now() - t0) * 1000) / k; // µs per dequeue+finish
}

const { dir, cleanup } = benchDir("qrunner-bench-sb-");
try {
  // interleave plain and qrunner runs so drift on a shared machine hits both alike
  const plain = [];
  const seq = [];
  const conc = [];
  const batch = [];
  for (let r = 0; r < 2; r++) {
    plain.push(await plainLoop(path.join(dir, `plain${r}`), N));
    seq.push(await sequential(path.join(dir, `q${r}`), N));
    conc.push(await concurrent(path.join(dir, `q${r}`), N, 16));
    batch.push(await batched(path.join(dir, `q${r}`), N, 100));
  }
  const best = (xs) => Math.max(...xs);
  const p = best(plain);
  const rows = [
    ["plain write+fsync+rename loop (no dir fsync)", fmt(p, 0), "1.00"],
    ["qrunner enqueue, one at a time (file + dir fsync)", fmt(best(seq), 0), fmt(best(seq) / p)],
    ["qrunner enqueue, 16 producers (group commit)", fmt(best(conc), 0), fmt(best(conc) / p)],
    ["qrunner enqueueMany, 100 per call (fan-out)", fmt(best(batch), 0), fmt(best(batch) / p)],
  ];
  table(`Durable enqueue, ${N} x 3 KB entries, best of 2 (${dir})`, ["what", "entries/s", "ratio"], rows);

  const ops = Number(arg("ops", 20000));
  const costs = [];
  for (const b of BACKLOG) costs.push([b, await drainCost(dir, b, ops)]);
  const base = costs[0][1];
  table(
    `dequeue+finish cost by backlog (${Math.min(ops, BACKLOG[0])}..${ops} ops each)`,
    ["entries queued", "µs per dequeue+finish", "ratio to first"],
    costs.map(([b, c]) => [b, fmt(c, 1), fmt(c / base)]),
  );
  emit("switchboard", {
    n: N,
    plain_per_s: p,
    enqueue_seq_per_s: best(seq),
    enqueue_16_per_s: best(conc),
    enqueue_batch100_per_s: best(batch),
    ratio_seq: best(seq) / p,
    ratio_group: best(conc) / p,
    ratio_batch: best(batch) / p,
    backlog: Object.fromEntries(costs.map(([b, c]) => [b, c])),
    backlog_ratio: costs.at(-1)[1] / base,
  });
} finally {
  cleanup();
}
