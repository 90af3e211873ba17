/**
 * `npm run demo`: qrunner end to end on one machine, no MTA needed. Three loopback SMTP receivers (two
 * weighted primaries and a fallback), a demo site with one list, the real master with all its workers,
 * a few thousand posts, one primary taken down mid-run and brought back; live progress, then a summary
 * checked against every (post, member) pair. Exits 0 only when every post reached every member.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { queueStats, type QueueStats } from "../queue/stats.js";
import { UsageError, describeError } from "../util/errors.js";
import { formatDuration } from "../util/units.js";
import { inject, pairsIn } from "./feed.js";
import { LogTail, startMaster, type MasterChild } from "./master.js";
import { HELP, parseOptions, type Options } from "./options.js";
import { Observer } from "./observer.js";
import { Progress, fmt, type Snapshot } from "./progress.js";
import { startReceiver, type Receiver } from "./receivers.js";
import { memberAddresses, post, writeDemoSite, type DemoSite } from "./site.js";
import { summaryLines, type Outage } from "./summary.js";
import { Tally } from "./tally.js";
import { waitReady } from "./ready.js";

const QUEUES = ["incoming", "outgoing", "backoff", "bounce", "shunt"] as const;
const PRIMARY_DOWN = "primary-1";

async function run(opts: Options): Promise<number> {
  const t0 = Date.now();
  const out = process.stdout;
  const members = memberAddresses(opts.members);
  const postIds = Array.from({ length: opts.posts }, (_, i) => post(i).messageId);
  const hostNames = ["primary-1", "primary-2", "fallback"];
  const tally = new Tally(postIds, members, hostNames);
  const receivers = new Map<string, Receiver>();
  let master: MasterChild | null = null;
  let site: DemoSite | null = null;
  let interrupted = false;
  const onInt = (): void => {
    interrupted = true;
  };
  process.on("SIGINT", onInt);
  try {
    for (const h of hostNames)
      receivers.set(h, await startReceiver(h, (r, id, to) => tally.record(r, id, to)));
    const port = (h: string): number => receivers.get(h)?.port ?? 0;
    const dir = opts.dir ?? (await mkdtemp(path.join(os.tmpdir(), "qrunner-demo-")));
    // queue entries left by an earlier run would be delivered too and spoil the count
    if (opts.dir !== undefined && (await readdir(dir).catch(() => [])).length > 0)
      throw new UsageError(`--dir ${dir} is not empty: give a new or empty directory`);
    site = await writeDemoSite(dir, {
      primaries: [
        { name: "primary-1", port: port("primary-1"), weight: 3 },
        { name: "primary-2", port: port("primary-2"), weight: 1 },
      ],
      fallback: { name: "fallback", port: port("fallback") },
      members: opts.members,
    });
    out.write(
      `qrunner demo: receivers on 127.0.0.1: primary-1 :${port("primary-1")} (weight 3), primary-2 :${port("primary-2")} (weight 1), fallback :${port("fallback")}\n` +
        `site: ${site.dir} (config ${path.relative(site.dir, site.configFile)}, log ${path.relative(site.dir, site.logFile)})\n` +
        `${fmt(opts.posts)} posts to ${site.list} x ${fmt(opts.members)} members = ${fmt(tally.expected)} deliveries\n`,
    );
    const observer = new Observer(t0);
    const tail = new LogTail(site.logFile, (l) => observer.line(l));
    master = startMaster(site.configFile);
    observer.note(`master started (pid ${master.pid ?? "?"})`);
    await waitReady(master, tail, observer, 60_000);
    observer.note(`workers ready: ${[...observer.ready].sort().join(", ")}`);

    const progress = new Progress(out);
    const outages: Outage[] = [];
    let phase = `injecting: ${opts.inject} through \`qrunner inject\`, ${opts.posts - opts.inject} by Switchboard.enqueue`;
    let injected = false;
    const injecting = inject(site, opts).then(
      () => {
        injected = true;
        observer.note(`all ${fmt(opts.posts)} posts queued in incoming`);
      },
      (err: unknown) => {
        injected = true;
        observer.note(`injection failed: ${describeError(err)}`);
      },
    );
    let last = { at: Date.now(), per: new Map(hostNames.map((h) => [h, 0])) };
    const rates = new Map(hostNames.map((h) => [h, 0]));
    let queues = new Map<string, QueueStats>();
    const snapshot = (): Snapshot => ({
      elapsedMs: Date.now() - t0,
      phase,
      queues,
      hosts: hostNames.map((h) => ({
        name: h,
        weight: h === "primary-1" ? 3 : h === "primary-2" ? 1 : undefined,
        up: receivers.get(h)?.isUp ?? false,
        transactions: tally.hosts.get(h)?.transactions ?? 0,
        recipients: tally.hosts.get(h)?.recipients ?? 0,
        rate: rates.get(h) ?? 0,
      })),
      delivered: tally.delivered,
      expected: tally.expected,
      duplicates: tally.duplicates,
      rate: [...rates.values()].reduce((a, b) => a + b, 0),
      backoffEntries: observer.backoffEntries.size,
      events: observer.events,
    });
    const tick = progress.tty ? 250 : 200;
    for (;;) {
      await new Promise((r) => setTimeout(r, tick));
      await tail.poll();
      queues = new Map(
        await Promise.all(QUEUES.map(async (q) => [q, await queueStats(site!.qfiles, q)] as const)),
      );
      const now = Date.now();
      if (now - last.at >= 1000) {
        for (const h of hostNames)
          rates.set(
            h,
            (((tally.hosts.get(h)?.recipients ?? 0) - (last.per.get(h) ?? 0)) * 1000) / (now - last.at),
          );
        last = { at: now, per: new Map(hostNames.map((h) => [h, tally.hosts.get(h)?.recipients ?? 0])) };
      }
      const down = receivers.get(PRIMARY_DOWN);
      const outage = outages[0];
      if (!outage && tally.delivered >= tally.expected * 0.25 && down) {
        await down.down();
        outages.push({ host: PRIMARY_DOWN, downAt: now - t0, upAt: null });
        observer.note(`demo: ${PRIMARY_DOWN} taken down (connections refused, open ones cut)`);
        phase = `${PRIMARY_DOWN} DOWN: its share goes through backoff to primary-2`;
      } else if (outage && outage.upAt === null && down) {
        const downFor = now - t0 - outage.downAt;
        if ((tally.delivered >= tally.expected * 0.5 && downFor >= 3000) || downFor >= 10_000) {
          await down.up();
          outage.upAt = now - t0;
          observer.note(`demo: ${PRIMARY_DOWN} back up (qrunner finds out at its next probe)`);
          phase = `${PRIMARY_DOWN} back up: delivering`;
        }
      } else if (injected && !outage) phase = "delivering";
      const drained = ["incoming", "outgoing", "backoff"].every((q) => {
        const s = queues.get(q);
        return s !== undefined && s.depth + s.inProgress === 0;
      });
      const complete =
        injected && tally.missing === 0 && drained && (outage === undefined || outage.upAt !== null);
      const failed = !master.running || interrupted || now - t0 >= opts.timeoutMs;
      if (complete || failed) {
        phase = complete
          ? "done"
          : !master.running
            ? "the master exited"
            : interrupted
              ? "interrupted"
              : `timed out after ${formatDuration(opts.timeoutMs, "seconds")}`;
        progress.finish(snapshot());
        break;
      }
      progress.update(snapshot());
    }
    await injecting;
    const outage = outages[0];
    if (outage && outage.upAt === null) await receivers.get(PRIMARY_DOWN)?.up();

    out.write("stopping the master (SIGTERM) ...\n");
    const stopped = await master.stop(60_000);
    const masterExit = stopped.signal
      ? `stopped by ${stopped.signal}`
      : `exited ${stopped.code ?? "?"} after SIGTERM`;
    await tail.poll();
    const pending = await pairsIn(site, ["incoming", "outgoing", "backoff"]);
    const shunted = await pairsIn(site, ["shunt"]);
    const lost = Math.max(0, tally.missing - pending - shunted);
    const primarySlices = [...observer.bySlice].sort(([a], [b]) => a.localeCompare(b));
    const lines = summaryLines({
      dir: site.dir,
      logFile: site.logFile,
      list: site.list,
      posts: opts.posts,
      viaInject: opts.inject,
      members: opts.members,
      elapsedMs: Date.now() - t0,
      hosts: hostNames.map((h, k) => ({
        name: h,
        weight: k === 0 ? 3 : k === 1 ? 1 : undefined,
        transactions: tally.hosts.get(h)?.transactions ?? 0,
        recipients: tally.hosts.get(h)?.recipients ?? 0,
        viaBackoff: observer.viaBackoff.get(h)?.recipients ?? 0,
        sliceEntries: primarySlices.find(([s]) => s.startsWith(`${k}/`))?.[1].size ?? 0,
      })),
      outages,
      cannotReach: observer.cannotReach,
      reachableAgain: observer.reachableAgain,
      backoffEntries: observer.backoffEntries.size,
      expected: tally.expected,
      delivered: tally.delivered,
      duplicates: tally.duplicates,
      other: tally.other,
      pending,
      shunted,
      lost,
      errors: observer.errors,
      lastError: observer.lastError,
      masterExit,
    });
    if (lost > 0)
      lines.push(`  never delivered, e.g.: ${tally.missingPairs(postIds, members).join("; ")}`, "");
    out.write(lines.join("\n") + "\n");
    if (opts.clean) await rm(site.dir, { recursive: true, force: true });
    else
      out.write(
        `the site is left in ${site.dir} (qrunner.log, qfiles); remove it with: rm -rf ${site.dir}\n`,
      );
    return lost === 0 && pending === 0 && shunted === 0 && !interrupted ? 0 : 1;
  } finally {
    process.off("SIGINT", onInt);
    if (master?.running) await master.stop(30_000);
    for (const r of receivers.values()) await r.close();
  }
}

async function main(): Promise<void> {
  let opts: Options | null;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`demo: ${describeError(err)}\n\n${HELP}`);
    process.exitCode = 64;
    return;
  }
  if (!opts) {
    process.stdout.write(HELP);
    return;
  }
  try {
    process.exitCode = await run(opts);
  } catch (err) {
    process.stderr.write(`demo: ${describeError(err)}\n`);
    process.exitCode = 1;
  }
}

await main();
