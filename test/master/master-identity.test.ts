/**
 * Finding 6 of issue 15: `qrunner stop` and `reload` (run as root) signal the pid the pid file names
 * only when it is the qrunner master that file describes: its command line, its start time, its user.
 * Real processes: a `sleep` named in a forged pid file, and a master (with stand-in workers).
 */
import { spawn } from "node:child_process";
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { notMasterArgs } from "../../src/master/master-identity.js";
import { BASE, cli, harnessAsQrunner, scopedSetup, readStatusFile, run, waitAllReady } from "./helpers.js";
import { alive, waitFor } from "../helpers/process.js";
import { testScope } from "../helpers/scope.js";

const t = testScope();

async function startTimeOf(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
}

describe("notMasterArgs", () => {
  it("takes `qrunner start` (any path, node flags before it) and refuses workers and other programs", () => {
    expect(notMasterArgs(["/usr/bin/node", "/opt/qrunner/bin/qrunner", "start", "-C", "/etc/q.yaml"])).toBe(
      undefined,
    );
    expect(notMasterArgs(["node", "--max-old-space-size=200", "/x/dist/cli/main.js", "start"])).toBe(
      undefined,
    );
    expect(notMasterArgs(["sleep", "300"])).toMatch(/not `qrunner start`/);
    expect(notMasterArgs(["node", "/opt/qrunner/bin/qrunner", "status"])).toMatch(/not `qrunner start`/);
    expect(
      notMasterArgs(["node", "/opt/qrunner/bin/qrunner", "start", "--runner=outgoing", "--slice=0/1"]),
    ).toMatch(/worker/);
    expect(
      notMasterArgs(["node", "/opt/qrunner/bin/qrunner", "start", "--instance", "outgoing:0-4"]),
    ).toMatch(/worker/);
  });
});

describe.skipIf(process.platform !== "linux")("stop and reload against a forged pid file", () => {
  it("refuse a pid naming an unrelated live process, with a clear error, and do not signal it", async () => {
    const setup = await scopedSetup(t, BASE);
    const victim = spawn("sleep", ["300"], { stdio: "ignore" });
    t.defer(() => victim.kill("SIGKILL"));
    const pid = victim.pid!;
    let signalled: string | null = null;
    victim.on("exit", (_code, signal) => (signalled = signal));
    // exactly what a master writes: pid, host, start time; the process is live and the start time right
    await mkdir(setup.stateDir, { recursive: true });
    await writeFile(
      path.join(setup.stateDir, "master.pid"),
      `${pid}\n${os.hostname()}\n${await startTimeOf(pid)}\n`,
    );
    for (const cmd of ["stop", "reload"]) {
      const r = await cli([cmd, "-C", setup.configFile]);
      expect(r.code, cmd).toBe(1);
      // the owner record's check (src/master/lock.ts) already finds that this pid neither holds the
      // record open nor runs `qrunner start`: no master is running, and nothing is signalled
      expect(r.stderr).toContain(`no master running for ${setup.stateDir}`);
    }
    // still running, never signalled (a SIGHUP or SIGTERM would have ended sleep)
    expect(alive(pid)).toBe(true);
    expect(victim.exitCode).toBe(null);
    expect(signalled).toBe(null);
  });

  it("refuse a real master whose pid file another user owns, and stop it once the file is its own", async () => {
    const setup = await scopedSetup(t, BASE);
    const h = harnessAsQrunner(setup.dir);
    const master = t.stopAfter(run(h.file, [...h.args, setup.configFile], { FAKE_LOG: setup.eventsFile }));
    await waitAllReady(setup.stateDir);
    const pid = master.child.pid!;
    const pidFile = path.join(setup.stateDir, "master.pid");
    if (process.getuid?.() === 0) {
      // as root: the daemon's user (here nobody) cannot make root signal a process of another user
      await chown(pidFile, 65534, 65534);
      const r = await cli(["stop", "-C", setup.configFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(`refusing to signal pid ${pid}: it runs as uid 0, the pid file belongs to uid 65534`),
      );
      expect(alive(pid)).toBe(true);
      await chown(pidFile, 0, 0);
    }
    // a start time that is not the process's: the pid was reused; status and stop call it gone
    const text = await readFile(pidFile, "utf8");
    const [p, host, start] = text.split("\n");
    await writeFile(pidFile, `${p}\n${host}\n${Number(start) + 1}\n`);
    expect((await cli(["stop", "-C", setup.configFile])).code).toBe(1);
    expect(alive(pid)).toBe(true);
    await writeFile(pidFile, text);
    const reload = await cli(["reload", "-C", setup.configFile]);
    expect(reload.code).toBe(0);
    const stop = await cli(["stop", "-C", setup.configFile]);
    expect(stop.code).toBe(0);
    await waitFor("the master gone", () => !alive(pid));
    expect((await readStatusFile(setup.stateDir))?.master.state).toBe("stopped");
  });

  it("use the config's pid_file, relative to the config file", async () => {
    const setup = await scopedSetup(t, BASE + "pid_file: ../run/master.pid\n");
    const h = harnessAsQrunner(setup.dir);
    const master = t.stopAfter(run(h.file, [...h.args, setup.configFile], { FAKE_LOG: setup.eventsFile }));
    await waitAllReady(setup.stateDir);
    const pid = master.child.pid!;
    const text = await readFile(path.join(setup.dir, "run", "master.pid"), "utf8");
    expect(text.split("\n")[0]).toBe(String(pid));
    expect((await cli(["status", "-C", setup.configFile])).code).toBe(0);
    expect((await cli(["stop", "-C", setup.configFile])).code).toBe(0);
    await waitFor("the master gone", () => !alive(pid));
  });
});
