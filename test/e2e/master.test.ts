/**
 * The master as operators run it: `qrunner start` with real workers, and `stop`, `reload`, `status`
 * with their exit codes. Real processes, real signals, temp dirs.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BASE, cli, scopedSetup, readStatusFile, run, waitAllReady, type Setup } from "../master/helpers.js";
import { BIN, alive, killAll, waitFor, type Running } from "../helpers/process.js";
import { testScope } from "../helpers/scope.js";

const HOSTS = `smtp:
  hosts:
    - { host: 127.0.0.1, port: 2525, weight: 1 }
    - { host: 127.0.0.1, port: 2526, weight: 3 }
`;
const CONFIG =
  BASE + "runners:\n  outgoing: { instances: auto }\n" + HOSTS + "master: { stop_timeout: 10s }\n";
const WORKERS = 7;

const t = testScope();
/** every worker pid a test saw, killed after it should one outlive its master */
const pids = new Set<number>();
afterEach(() => {
  killAll(pids);
  pids.clear();
});

function start(s: Setup, extra: string[] = [], env: Record<string, string> = {}): Running {
  return t.stopAfter(run(BIN, ["start", "-C", s.configFile, ...extra], env));
}

async function workerPids(s: Setup): Promise<number[]> {
  const st = await readStatusFile(s.stateDir);
  const list = (st?.workers ?? []).map((w) => w.pid).filter((p): p is number => p !== null);
  for (const p of list) pids.add(p);
  return list;
}

describe("qrunner start / stop / reload / status", () => {
  it.skipIf(process.getuid?.() !== 0)("refuses to run as root without --allow-root", async () => {
    const setup = await scopedSetup(t, CONFIG);
    const r = await cli(["start", "-C", setup.configFile], { QRUNNER_ALLOW_ROOT: "" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to run as root/);
    expect(existsSync(path.join(setup.stateDir, "master.lock"))).toBe(false);
  });

  it("exits 1 from stop, reload and status when no master runs", async () => {
    const setup = await scopedSetup(t, CONFIG);
    for (const cmd of ["stop", "reload", "status"]) {
      const r = await cli([cmd, "-C", setup.configFile]);
      expect({ cmd, code: r.code }).toEqual({ cmd, code: 1 });
    }
    const json = await cli(["status", "--json", "-C", setup.configFile]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ running: false, stale: false, workers: [] });
  });

  it("exits 78 on an invalid config, printing file:line:col", async () => {
    const setup = await scopedSetup(t, CONFIG.replace("weight: 3", "weight: -3"));
    const r = await cli(["start", "-C", setup.configFile]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${setup.configFile}:`);
    expect(r.stderr).toMatch(/qrunner\.yaml:\d+:\d+: /);
  });

  it("runs the workers, refuses a second master, follows an edit, reloads and stops cleanly", async () => {
    const setup = await scopedSetup(t, CONFIG);
    const master = start(setup);
    const st = await waitAllReady(setup.stateDir, WORKERS, 30_000);
    await waitFor("the ready line", () => master.stdout().includes('"msg":"all workers ready"'));
    const ready = JSON.parse(
      master
        .stdout()
        .split("\n")
        .find((l) => l.includes('"msg":"all workers ready"'))!,
    ) as {
      ms: number;
    };
    console.log(
      `all ${WORKERS} workers ready ${ready.ms} ms after start; master rss ${(st.master.rss / 2 ** 20).toFixed(1)} MB`,
    );

    // each worker is `qrunner start --runner=NAME --slice=SPEC -C FILE`, as an operator would run it
    for (const w of st.workers) {
      const argv = readFileSync(`/proc/${w.pid}/cmdline`, "utf8").split("\0");
      expect(argv).toContain(`--runner=${w.runner}`);
      expect(argv).toContain(`--slice=${w.slice}`);
      expect(argv.slice(argv.indexOf("-C"))[1]).toBe(setup.configFile);
    }
    expect(st.workers.filter((w) => w.runner === "outgoing").map((w) => w.slice)).toEqual([
      "0/2:1,3",
      "1/2:1,3",
    ]);
    const before = await workerPids(setup);

    const status = await cli(["status", "-C", setup.configFile]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^master\s+running, pid \d+/);
    expect(status.stdout).toMatch(/RUNNER\s+SLICE\s+HOST\s+PID\s+STATE/);
    expect(status.stdout).toMatch(/QUEUE\s+DEPTH\s+IN PROGRESS\s+OLDEST/);
    const json = JSON.parse((await cli(["status", "--json", "-C", setup.configFile])).stdout) as {
      running: boolean;
      workers: Array<{ state: string }>;
      queues: Array<{ name: string }>;
    };
    expect(json.running).toBe(true);
    expect(json.workers.map((w) => w.state)).toEqual(Array(WORKERS).fill("ready"));
    expect(json.queues.map((q) => q.name)).toContain("shunt");

    // a real worker killed outright is restarted, the others untouched
    const victim = st.workers.find((w) => w.runner === "command")!;
    process.kill(victim.pid!, "SIGKILL");
    const restarted = await waitFor(
      "the command worker back",
      async () => {
        const s = await readStatusFile(setup.stateDir);
        const w = s?.workers.find((x) => x.runner === "command");
        return w && w.state === "ready" && w.pid !== victim.pid ? s : null;
      },
      30_000,
    );
    expect(restarted.workers.find((w) => w.runner === "command")?.restarts).toBe(1);
    for (const w of restarted.workers) if (w.runner !== "command") expect(before).toContain(w.pid);
    before.splice(
      before.indexOf(victim.pid!),
      1,
      ...(await workerPids(setup)).filter((p) => !before.includes(p)),
    );

    const second = await cli(["start", "-C", setup.configFile]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`pid ${master.child.pid} on `);

    await setup.writeConfig(CONFIG.replace("weight: 3", "weight: 2"));
    const edited = await waitFor(
      "the outgoing workers replaced",
      async () => {
        const s = await readStatusFile(setup.stateDir);
        return s?.workers.some((w) => w.slice === "1/2:1,2") && s.workers.every((w) => w.state === "ready")
          ? s
          : null;
      },
      30_000,
    );
    for (const w of edited.workers) {
      if (w.runner === "outgoing") expect(before).not.toContain(w.pid);
      else expect(before).toContain(w.pid);
    }
    await workerPids(setup);

    const reload = await cli(["reload", "-C", setup.configFile]);
    expect(reload.code).toBe(0);

    const all = [master.child.pid!, ...(await workerPids(setup))];
    const stop = await cli(["stop", "-C", setup.configFile]);
    expect(stop.code).toBe(0);
    expect((await master.exited).code).toBe(0);
    for (const pid of all) expect(alive(pid)).toBe(false);
    expect(existsSync(path.join(setup.stateDir, "master.lock"))).toBe(false);
    expect((await cli(["status", "-C", setup.configFile])).code).toBe(1);
    expect((await cli(["stop", "-C", setup.configFile])).code).toBe(1);
  });

  it("after a SIGKILL of the master: workers exit, status says stale (2), the next start takes over", async () => {
    const setup = await scopedSetup(t, CONFIG);
    const master = start(setup);
    await waitAllReady(setup.stateDir, WORKERS, 30_000);
    const workers = await workerPids(setup);
    master.child.kill("SIGKILL");
    await master.exited;
    await waitFor("the workers to notice and exit", () => workers.every((p) => !alive(p)), 30_000);
    expect((await cli(["status", "-C", setup.configFile])).code).toBe(2);
    expect((await cli(["reload", "-C", setup.configFile])).code).toBe(1);

    const next = start(setup);
    await waitFor(
      "the new master's status",
      async () => (await readStatusFile(setup.stateDir))?.master.pid === next.child.pid,
    );
    await waitAllReady(setup.stateDir, WORKERS, 30_000);
    await workerPids(setup);
    expect((await cli(["stop", "-C", setup.configFile])).code).toBe(0);
    expect((await next.exited).code).toBe(0);
  });

  it("runs one worker by hand with --runner/--slice, and rejects --slice without --runner", async () => {
    const setup = await scopedSetup(t, CONFIG);
    const once = await cli(["start", "--runner=incoming", "--slice=0/2", "--once", "-C", setup.configFile]);
    expect(once.code).toBe(0);
    const bad = await cli(["start", "--slice=0/2", "-C", setup.configFile]);
    expect(bad.code).toBe(64);
    const inst = await cli(["start", "--instance=archive:0-1", "--once", "-C", setup.configFile]);
    expect(inst.code).toBe(0);
  });
});
