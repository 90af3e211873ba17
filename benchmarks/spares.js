// Recycled entry files (src/queue/spares.ts) on and off, side by side on each filesystem given:
// durable enqueue (one at a time, and 16 producers sharing group commits) and dequeue+finish, in
// cycles of `cycle` entries so that the entries a cycle finishes are the spares the next one takes
// (as in a running daemon, where incoming's finished entries become outgoing's new ones).
// Rounds alternate the order (on, off / off, on), each mode in its own fresh queue root; the table
// gives each rate's median over rounds and the median of the per-round on/off ratios.
//
//   node benchmarks/spares.js [--dirs=/tmp,/mnt/ext4,/mnt/tmpfs] [--n=3000] [--cycle=500]
//        [--rounds=5] [--json] [--quiet-wait=S]
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Switchboard } from "../dist/queue/switchboard.js";
import { SparePool } from "../dist/queue/spares.js";
import {
  arg,
  emit,
  fmt,
  isMain,
  log,
  median,
  now,
  num,
  spread,
  table,
  waitQuiet,
  benchMessage as message,
  benchMeta as meta,
  rate,
} from "./lib.js";

/** One mode's run in a fresh root: returns entries/s for seq enqueue, 16-producer enqueue, drain. */
async function runMode(base, recycle, n, cycle) {
  const root = mkdtempSync(path.join(base, `qrunner-bench-spares-${recycle ? "on" : "off"}-`));
  try {
    const spares = recycle ? new SparePool(root) : false;
    const sb = await Switchboard.open({ root, queue: "q", spares });
    const drain = async (k) => {
      for (let i = 0; i < k; i++) {
        const e = await sb.dequeue();
        if (!e) throw new Error(`queue empty after ${i} of ${k}`);
        await sb.finish(e);
      }
    };
    // warm-up (not timed): one cycle through, so that the pool holds `cycle` spares when recycling
    for (let i = 0; i < cycle; i++) await sb.enqueue(message, meta);
    await drain(cycle);
    const ms = { seq: 0, conc: 0, drain: 0 };
    let drained = 0;
    for (let done = 0; done < n; done += cycle) {
      const k = Math.min(cycle, n - done);
      let t = now();
      for (let i = 0; i < k; i++) await sb.enqueue(message, meta);
      ms.seq += now() - t;
      t = now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < k) {
            next++;
            await sb.enqueue(message, meta);
          }
        }),
      );
      ms.conc += now() - t;
      t = now();
      await drain(2 * k);
      ms.drain += now() - t;
      drained += 2 * k;
    }
    const spareFiles = recycle ? readdirSync(path.join(root, ".spare")).length : 0;
    sb.close();
    return { seq: rate(n, ms.seq), conc: rate(n, ms.conc), drain: rate(drained, ms.drain), spareFiles };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export async function main() {
  const dirs = arg("dirs", arg("dir", os.tmpdir())).split(",");
  const n = num("n", 3000, 1000);
  const cycle = num("cycle", 500);
  const rounds = num("rounds", 5, 2);
  const results = [];
  for (const dir of dirs) {
    const fsType = execFileSync("stat", ["-f", "-c", "%T", dir], { encoding: "utf8" }).trim();
    const R = { on: [], off: [] };
    for (let r = 0; r < rounds; r++) {
      await waitQuiet();
      const order = r % 2 ? [false, true] : [true, false];
      for (const recycle of order) {
        const x = await runMode(dir, recycle, n, cycle);
        R[recycle ? "on" : "off"].push(x);
        log(
          `${dir} (${fsType}) round ${r + 1}/${rounds} recycle ${recycle ? "on " : "off"}: enqueue ${fmt(x.seq, 0)}/s, 16 producers ${fmt(x.conc, 0)}/s, dequeue+finish ${fmt(x.drain, 0)}/s`,
        );
      }
    }
    const col = (mode, k) => R[mode].map((x) => x[k]);
    const ratio = (k) => median(R.on.map((x, i) => x[k] / R.off[i][k]));
    const rows = [
      ["enqueue, one at a time", "seq"],
      ["enqueue, 16 producers (group commit)", "conc"],
      ["dequeue+finish", "drain"],
    ].map(([what, k]) => [what, spread(col("on", k)), spread(col("off", k)), fmt(ratio(k))]);
    table(
      `Recycled files on/off, ${dir} (${fsType}): ${n} x 3 KB entries per round in cycles of ${cycle}, ${rounds} rounds A/B alternating; entries/s median (min..max), on/off = median of per-round ratios`,
      ["what", "recycle on", "recycle off", "on/off"],
      rows,
    );
    results.push({
      dir,
      fs: fsType,
      on: R.on,
      off: R.off,
      ratio_seq: ratio("seq"),
      ratio_conc: ratio("conc"),
      ratio_drain: ratio("drain"),
    });
  }
  emit("spares", { n, cycle, rounds, results });
}

if (isMain(import.meta.url)) await main();
