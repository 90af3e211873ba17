/**
 * The master with stand-in workers (fake-worker.js speaks the worker IPC protocol): spawning,
 * restarts, backoff, stalls, signals, the lock and live config edits, with real processes and signals.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  BASE,
  cli,
  harnessAsQrunner,
  scopedSetup,
  readEvents,
  readStatusFile,
  run,
  waitAllReady,
  type Setup,
} from "./helpers.js";
import { alive, killAll, waitFor, type Running } from "../helpers/process.js";
import { testScope } from "../helpers/scope.js";

const HOSTS = `smtp:
  hosts:
    - { host: 127.0.0.1, port: 2525, weight: 1 }
    - { host: 127.0.0.1, port: 2526, weight: 3, name: mx2 }
`;
// stall_timeout 5 s: long enough that a stand-in worker on a loaded machine is ready and heartbeating
// in time (at 2 s, a slow start read as "not ready" and restarted workers the tests count on)
const MASTER = "master: { stop_timeout: 5s, stall_timeout: 5s }\n";
const CONFIG =
  BASE + "runners:\n  incoming: { instances: 2 }\n  outgoing: { instances: auto }\n" + HOSTS + MASTER;

const t = testScope();
let master: Running;
/** every pid of a master or worker a test saw, killed after it should one be left */
const seen = new Set<number>();

function startMaster(s: Setup, env: Record<string, string> = {}): Running {
  t.defer(async () => {
    for (const e of await readEvents(s.eventsFile)) seen.add(e.pid);
    killAll(seen);
    seen.clear();
  });
  const h = harnessAsQrunner(s.dir);
  const m = t.stopAfter(run(h.file, [...h.args, s.configFile], { FAKE_LOG: s.eventsFile, ...env }));
  if (m.child.pid) seen.add(m.child.pid);
  return m;
}

async function pidsOf(s: Setup): Promise<Map<string, number>> {
  const st = await readStatusFile(s.stateDir);
  const m = new Map<string, number>();
  for (const w of st?.workers ?? []) if (w.pid !== null) m.set(w.key, w.pid);
  for (const p of m.values()) seen.add(p);
  return m;
}

describe("master with stand-in workers", () => {
  it("spawns every configured worker with its slice and logs once when all are ready", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup);
    const st = await waitAllReady(setup.stateDir, 8);
    expect(st.workers.map((w) => `${w.runner} ${w.slice} ${w.host ?? ""}`.trim())).toEqual([
      "incoming 0/2",
      "incoming 1/2",
      "outgoing 0/2:1,3 127.0.0.1:2525",
      "outgoing 1/2:1,3 mx2",
      "bounce 0/1",
      "command 0/1",
      "archive 0/1",
      "backoff 0/1",
    ]);
    // what each worker process was actually given on its command line
    const starts = (await readEvents(setup.eventsFile)).filter((e) => e.event === "start");
    expect(starts.map((e) => `${e.runner} ${e.slice}`).sort()).toEqual(
      st.workers.map((w) => `${w.runner} ${w.slice}`).sort(),
    );
    await waitFor("the ready line", () => master?.stdout().includes('"msg":"all workers ready"'));
    const line =
      master
        .stdout()
        .split("\n")
        .find((l) => l.includes('"msg":"all workers ready"')) ?? "";
    const parsed = JSON.parse(line) as { workers: number; ms: number };
    expect(parsed.workers).toBe(8);
    expect(parsed.ms).toBeGreaterThan(0);
    await waitFor("readyMs in status", async () => (await readStatusFile(setup.stateDir))?.master.readyMs);
    // the mail path's workers were started first, the others only once one of those was ready (a
    // stand-in is ready 100 ms after it starts) or the wait for them was over (on a loaded machine a
    // worker may have been restarted since: its start time is then that of the restart)
    const startedAt = (runners: string[]) =>
      st.workers.filter((w) => runners.includes(w.runner) && w.restarts === 0).map((w) => w.startedAt ?? NaN);
    const first = startedAt(["incoming", "outgoing"]);
    const later = startedAt(["bounce", "command", "archive", "backoff"]);
    if (first.length && later.length)
      expect(Math.min(...later) - Math.min(...first)).toBeGreaterThanOrEqual(100);
  });

  it("restarts a worker killed with SIGKILL", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup);
    await waitAllReady(setup.stateDir, 8);
    const before = await pidsOf(setup);
    const victim = before.get("command 0/1")!;
    process.kill(victim, "SIGKILL");
    const st = await waitFor("command restarted", async () => {
      const s = await readStatusFile(setup.stateDir);
      const w = s?.workers.find((x) => x.key === "command 0/1");
      return w && w.state === "ready" && w.pid !== victim ? s : null;
    });
    const w = st.workers.find((x) => x.key === "command 0/1")!;
    expect(w.restarts).toBe(1);
    expect(w.lastError).toMatch(/SIGKILL/);
    const after = await pidsOf(setup);
    for (const [key, pid] of before) if (key !== "command 0/1") expect(after.get(key)).toBe(pid);
  });

  it("backs off a worker failing at start and gives up after max_restarts", async () => {
    const setup = await scopedSetup(
      t,
      CONFIG.replace("runners:\n", "runners:\n  bounce: { max_restarts: 2 }\n"),
    );
    master = startMaster(setup, { FAKE_FAIL: "bounce" });
    const st = await waitFor("bounce gave up", async () => {
      const s = await readStatusFile(setup.stateDir);
      return s?.workers.find((w) => w.runner === "bounce")?.state === "gave-up" ? s : null;
    });
    const bounce = st.workers.find((w) => w.runner === "bounce")!;
    expect(bounce.restarts).toBe(2);
    expect(bounce.pid).toBeNull();
    expect(bounce.lastError).toMatch(/code 70/);
    expect(
      (await readEvents(setup.eventsFile)).filter((e) => e.runner === "bounce" && e.event === "start"),
    ).toHaveLength(3);
    await waitFor("gave-up logged", () => master?.stdout().includes("worker gave up"));
    expect(master.stdout()).toMatch(/"level":"error"[^\n]*"runner":"bounce"[^\n]*worker gave up/);
    // the other workers run on
    expect(
      st.workers
        .filter((w) => w.runner !== "bounce")
        .every((w) => w.state === "ready" || w.state === "starting"),
    ).toBe(true);
  });

  it("does not restart a worker node refuses to start (exit 9), and says so once", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup, { FAKE_BAD_OPTION: "bounce" });
    const st = await waitFor("bounce refused", async () => {
      const s = await readStatusFile(setup.stateDir);
      return s?.workers.find((w) => w.runner === "bounce")?.state === "gave-up" ? s : null;
    });
    const bounce = st.workers.find((w) => w.runner === "bounce")!;
    expect(bounce.lastError).toMatch(/node refused .*exit 9.*--qrunner-no-such-option/);
    // a restart would come after 200 ms (the harness's backoff): give it many times that, while the
    // status file is rewritten, then the worker must still be down, never restarted
    const seenAt = st.updatedAt;
    const later = await waitFor("status rewritten 2 s later", async () => {
      const s = await readStatusFile(setup.stateDir);
      return s && s.updatedAt - seenAt >= 2000 ? s : null;
    });
    expect(later.workers.find((w) => w.runner === "bounce")).toMatchObject({
      state: "gave-up",
      restarts: 0,
      pid: null,
    });
    const refusals = master
      .stdout()
      .split("\n")
      .filter((l) => l.includes("node refused to start the worker"));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/"level":"error"[^\n]*"runner":"bounce"/);
    expect(master.stderr()).toMatch(/bad option: --qrunner-no-such-option/);
  });

  it("kills and restarts a worker whose heartbeats stop, and one with due entries and no progress", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup, { FAKE_SILENT: "archive", FAKE_DUE: "backoff" });
    for (const runner of ["archive", "backoff"]) {
      const w = await waitFor(`${runner} restarted after a stall`, async () => {
        const s = await readStatusFile(setup.stateDir);
        const x = s?.workers.find((y) => y.runner === runner);
        return x && x.restarts >= 1 ? x : null;
      });
      expect(w.lastError).toMatch(
        runner === "archive" ? /stalled: no heartbeat/ : /stalled: 5 entries due and no progress/,
      );
    }
    expect(master.stdout()).toMatch(/"runner":"archive","slice":"0\/1"[^\n]*worker stalled/);
    const others = (await readStatusFile(setup.stateDir))!.workers.filter(
      (w) => !["archive", "backoff"].includes(w.runner),
    );
    expect(others.every((w) => w.restarts === 0)).toBe(true);
  });

  it("stops every worker on SIGTERM, releases the lock and exits 0", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup);
    await waitAllReady(setup.stateDir, 8);
    const pids = [...(await pidsOf(setup)).values()];
    master.child.kill("SIGTERM");
    expect((await master.exited).code).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(existsSync(path.join(setup.stateDir, "master.lock"))).toBe(false);
    expect(existsSync(path.join(setup.stateDir, "master.pid"))).toBe(false);
    const terms = (await readEvents(setup.eventsFile)).filter((e) => e.event === "term");
    expect(terms).toHaveLength(8);
    expect((await readStatusFile(setup.stateDir))?.master.state).toBe("stopped");
  });

  it("refuses a second master with exit 1, naming the pid and host", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup);
    await waitAllReady(setup.stateDir, 8);
    const second = startMaster(setup);
    const { code } = await second.exited;
    expect(code).toBe(1);
    expect(second.stderr()).toContain(`pid ${master.child.pid} on `);
    expect((await readStatusFile(setup.stateDir))?.master.pid).toBe(master.child.pid);
  });

  it("after a SIGKILL of the master its workers exit and the next master takes the lock", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup);
    await waitAllReady(setup.stateDir, 8);
    const pids = [...(await pidsOf(setup)).values()];
    master.child.kill("SIGKILL");
    await master.exited;
    await waitFor("orphaned workers gone", () => pids.every((p) => !alive(p)));
    expect((await readEvents(setup.eventsFile)).filter((e) => e.event === "disconnect")).toHaveLength(8);
    expect(existsSync(path.join(setup.stateDir, "master.lock"))).toBe(true);
    const st = await cli(["status", "-C", setup.configFile]);
    expect(st.code).toBe(2);
    master = startMaster(setup);
    const pid = master.child.pid;
    await waitFor(
      "the new master's status",
      async () => (await readStatusFile(setup.stateDir))?.master.pid === pid,
    );
    const next = await waitAllReady(setup.stateDir, 8);
    expect(next.master.pid).toBe(pid);
    expect(master.stdout()).toContain("taking over the lock");
  });

  it("on an edit of the outgoing weights restarts exactly the outgoing workers, and SIGHUPs the rest", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup);
    await waitAllReady(setup.stateDir, 8);
    const before = await pidsOf(setup);
    await setup.writeConfig(CONFIG.replace("weight: 3", "weight: 2"));
    const st = await waitFor("new outgoing slices", async () => {
      const s = await readStatusFile(setup.stateDir);
      return s?.workers.some((w) => w.slice === "1/2:1,2") && s.workers.every((w) => w.state === "ready")
        ? s
        : null;
    });
    expect(st.workers.filter((w) => w.runner === "outgoing").map((w) => w.slice)).toEqual([
      "0/2:1,2",
      "1/2:1,2",
    ]);
    const after = await pidsOf(setup);
    for (const [key, pid] of before) {
      if (key.startsWith("outgoing ")) expect(after.has(key)).toBe(false);
      else expect(after.get(key)).toBe(pid);
    }
    const events = await readEvents(setup.eventsFile);
    const terms = events.filter((e) => e.event === "term").map((e) => e.runner);
    expect(terms).toEqual(["outgoing", "outgoing"]);
    await waitFor("SIGHUP to the others", async () => {
      const hups = (await readEvents(setup.eventsFile)).filter((e) => e.event === "hup");
      return hups.length === 6;
    });

    // now the instance count: outgoing auto → 3 equal slices
    const before2 = await pidsOf(setup);
    await setup.writeConfig(CONFIG.replace("outgoing: { instances: auto }", "outgoing: { instances: 3 }"));
    const st2 = await waitFor("3 outgoing workers", async () => {
      const s = await readStatusFile(setup.stateDir);
      const out = s?.workers.filter((w) => w.runner === "outgoing") ?? [];
      return out.length === 3 && s?.workers.every((w) => w.state === "ready") ? s : null;
    });
    expect(st2.workers.filter((w) => w.runner === "outgoing").map((w) => w.slice)).toEqual([
      "0/3",
      "1/3",
      "2/3",
    ]);
    const after2 = await pidsOf(setup);
    for (const [key, pid] of before2) if (!key.startsWith("outgoing ")) expect(after2.get(key)).toBe(pid);
  });

  it("rejects an invalid edit, keeps the old config, and shows it in status --json", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup);
    const first = await waitAllReady(setup.stateDir, 8);
    await setup.writeConfig(CONFIG.replace("incoming: { instances: 2 }", "incoming: { instances: many }"));
    const st = await waitFor(
      "rejected edit",
      async () => (await readStatusFile(setup.stateDir))?.rejectedEdit,
    );
    expect(st.issues[0]?.file).toBe(setup.configFile);
    expect(st.issues[0]?.line).toBeGreaterThan(0);
    expect(st.message).toMatch(/qrunner\.yaml:\d+:\d+: /);
    const status = await cli(["status", "--json", "-C", setup.configFile]);
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout) as {
      running: boolean;
      config: { version: string };
      rejectedEdit: { message: string };
      workers: unknown[];
    };
    expect(report.running).toBe(true);
    expect(report.config.version).toBe(first.config.version);
    expect(report.rejectedEdit.message).toContain("qrunner.yaml:");
    expect(report.workers).toHaveLength(8);
    expect(master.stdout()).toMatch(/"level":"error"[^\n]*config edit rejected/);
    // no worker was touched
    const again = await readStatusFile(setup.stateDir);
    expect(again?.workers.map((w) => w.pid)).toEqual(first.workers.map((w) => w.pid));
    // a later valid edit clears it
    await setup.writeConfig(CONFIG + "\n");
    await waitFor(
      "rejection cleared",
      async () => (await readStatusFile(setup.stateDir))?.rejectedEdit === null,
    );
  });

  it("sends SIGHUP to every worker on a list edit and on `reload`", async () => {
    const setup = await scopedSetup(t, CONFIG);
    master = startMaster(setup);
    const first = await waitAllReady(setup.stateDir, 8);
    await writeFile(
      path.join(setup.listsDir, "dev@example.org.yaml"),
      "address: dev@example.org\nowners: [owner@example.org]\nmembers: [alice@example.net]\n",
    );
    await waitFor(
      "8 SIGHUPs",
      async () => (await readEvents(setup.eventsFile)).filter((e) => e.event === "hup").length === 8,
    );
    const r = await cli(["reload", "-C", setup.configFile]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/reloaded: config [0-9a-f]{12} in force/);
    await waitFor(
      "16 SIGHUPs",
      async () => (await readEvents(setup.eventsFile)).filter((e) => e.event === "hup").length === 16,
    );
    const st = await readStatusFile(setup.stateDir);
    expect(st?.workers.map((w) => w.pid)).toEqual(first.workers.map((w) => w.pid));
    // an invalid edit: reload says so with exit 78
    await setup.writeConfig(CONFIG.replace("stall_timeout: 5s", "stall_timeout: soon"));
    await waitFor("rejected", async () => (await readStatusFile(setup.stateDir))?.rejectedEdit);
    const bad = await cli(["reload", "-C", setup.configFile]);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toMatch(/qrunner\.yaml:\d+:\d+: /);
  });

  it("restarts the workers one by one on SIGUSR1", async () => {
    // no stall detection here: on a loaded CI machine a stall_timeout can restart a stand-in
    // worker for a late heartbeat, and this test counts restarts that are not the rolling ones
    const setup = await scopedSetup(t, CONFIG.replace("stall_timeout: 5s", "stall_timeout: 60s"));
    master = startMaster(setup);
    const first = await waitAllReady(setup.stateDir, 8);
    master.child.kill("SIGUSR1");
    await waitFor("rolling restart done", () => master?.stdout().includes("rolling restart done"), 30_000);
    const old = new Set(first.workers.map((w) => w.pid));
    // the status file is rewritten every few seconds: wait for one written after the restart
    const st = await waitFor("status with every worker new and ready", async () => {
      const s = await readStatusFile(setup.stateDir);
      const fresh = s?.workers.length === 8 && s.workers.every((w) => w.state === "ready" && !old.has(w.pid));
      return fresh ? s : null;
    });
    expect(st.workers.every((w) => !old.has(w.pid))).toBe(true);
    expect(
      st.workers.every((w) => w.restarts === 0),
      master.stdout(),
    ).toBe(true);
    // one at a time: each worker's start comes after the previous one's term
    const events = (await readEvents(setup.eventsFile)).slice(8);
    expect(events.map((e) => e.event)).toEqual(Array.from({ length: 8 }, () => ["term", "start"]).flat());
  });
});
