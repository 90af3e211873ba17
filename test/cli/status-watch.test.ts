/**
 * `qrunner status --watch`: plain frames when stdout is not a terminal; in a real 80x30 terminal
 * (tmux, skipped when it is not installed) the frame redraws in place, fits the width, and Ctrl-C
 * ends it cleanly with the cursor shown again. Real processes, a real master.
 */
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Switchboard } from "../../src/queue/switchboard.js";
import { BASE, scopedSetup, run, waitAllReady, type Setup } from "../master/helpers.js";
import { BIN, REPO, waitFor } from "../helpers/process.js";
import { testScope } from "../helpers/scope.js";

const HAVE_TMUX = spawnSync("tmux", ["-V"]).status === 0;
const CONFIG =
  BASE + "smtp:\n  hosts:\n    - { host: 127.0.0.1, port: 2599, weight: 1 }\nmaster: { stop_timeout: 10s }\n";

const t = testScope();

/** Entries in queues no runner drains (hold, shunt), and deferred ones in backoff: stable depths. */
async function fill(s: Setup): Promise<void> {
  const root = path.join(s.dir, "qfiles");
  const now = Date.now();
  for (const [queue, n] of [
    ["hold", 40],
    ["shunt", 10],
    ["backoff", 20],
  ] as const) {
    const sb = await Switchboard.open({ root, queue });
    await sb.enqueueMany(
      Array.from({ length: n }, (_, i) => ({
        message: Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`),
        meta: { sender: "", recipients: [`u${i}@example.net`], received: now - i * 60_000 },
        notBefore: queue === "backoff" ? now + 3_600_000 : now - i * 60_000,
      })),
    );
  }
}

describe("qrunner status --watch", () => {
  it("writes plain frames of at most 80 columns when stdout is no terminal, and exits 0 on SIGTERM", async () => {
    const setup = await scopedSetup(t, CONFIG);
    await fill(setup);
    const w = t.stopAfter(run(BIN, ["status", "--watch", "--interval=0.2", "-C", setup.configFile]));
    await waitFor("two frames", () => (w.stdout().match(/^QUEUE /gm) ?? []).length >= 2);
    w.child.kill("SIGTERM");
    const { code } = await w.exited;
    expect(code).toBe(0);
    const out = w.stdout();
    expect(out).not.toContain("\x1b["); // no escape sequences in a file or pipe
    expect(out).toMatch(/^qrunner {2}master not running/m);
    expect(out).toMatch(/^hold\s+40\s+0\s+\S+\s+\S+/m); // a bar after the numbers
    expect(out).toMatch(/^shunt\s+10\s+0\s+/m);
    for (const line of out.split("\n")) expect(line.length, line).toBeLessThanOrEqual(80);
    expect((await w.exited).signal).toBeNull();
  });

  it("rejects a nonsense interval", async () => {
    const setup = await scopedSetup(t, CONFIG);
    const r = run(BIN, ["status", "--watch", "--interval=often", "-C", setup.configFile]);
    expect((await r.exited).code).toBe(64);
    expect(r.stderr()).toMatch(/--interval/);
  });

  it.skipIf(!HAVE_TMUX)(
    "redraws in place in an 80x30 terminal against a running master and quits on Ctrl-C",
    async () => {
      const setup = await scopedSetup(t, CONFIG);
      await fill(setup);
      const master = t.stopAfter(run(BIN, ["start", "-C", setup.configFile]));
      await waitAllReady(setup.stateDir, undefined, 30_000);

      const socket = `qrunner-test-${process.pid}`;
      t.defer(() => spawnSync("tmux", ["-L", socket, "kill-server"]));
      const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
      const cmd = `node ${BIN} status --watch --interval=0.3 -C ${setup.configFile}; echo "EXITED $?"; sleep 60`;
      tmux("new-session", "-d", "-x", "80", "-y", "30", "-c", REPO, "-e", "LANG=C.UTF-8", cmd);
      const screen = () => tmux("capture-pane", "-p");

      await waitFor(
        "a frame with workers",
        () => /RUNNER\s+SLICE/.test(screen()) && /master running/.test(screen()),
      );
      // let it redraw a few times: the frame stays in place (one header, not a scrolling log)
      const first = screen().split("\n")[0];
      await waitFor("a later frame", () => screen().split("\n")[0] !== first, 5_000);
      const s = screen();
      expect(s.match(/^QUEUE /gm)).toHaveLength(1);
      expect(s).toMatch(/^qrunner {2}master running, pid \d+/);
      expect(s).toMatch(/^hold\s+40\s+0\s+\S+\s+█+/m);
      expect(s).toMatch(/^backoff\s+20\s+0\s+in \d/m); // deferred: when the first falls due
      expect(s).toMatch(/^incoming\s+0\s+0\s+-$/m);
      expect(s).toMatch(/^outgoing\s+0\/1\S*\s+127\.0\.0\.1:2599\s+\d+\s+ready/m);
      expect(s).toMatch(/^SMTP HOST\s+STATE/m);
      for (const line of s.split("\n")) expect(line.length, line).toBeLessThanOrEqual(80);
      // the bar of the deepest queue reaches the last column
      expect(s.split("\n").find((l) => l.startsWith("hold"))).toHaveLength(80);
      expect(tmux("display", "-p", "#{cursor_flag}").trim()).toBe("0");

      tmux("send-keys", "C-c");
      await waitFor("the watch to exit", () => /EXITED \d+/.test(screen()), 10_000);
      expect(screen()).toMatch(/EXITED 0/);
      expect(tmux("display", "-p", "#{cursor_flag}").trim()).toBe("1");
      // the master is unaffected
      expect(master.child.exitCode).toBeNull();
    },
  );
});
