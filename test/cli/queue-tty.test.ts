/**
 * `qrunner queue delete` in a real terminal (tmux; skipped when it is not installed): it asks before
 * deleting, a "no" deletes nothing, and bulk work shows a progress bar on stderr.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Switchboard } from "../../src/queue/switchboard.js";
import { BIN, REPO, makeSite, requireBuild, waitFor, type Site } from "../helpers/site.js";

const HAVE_TMUX = spawnSync("tmux", ["-V"]).status === 0;
let site: Site;
let socket: string | null = null;

beforeAll(() => requireBuild());
beforeEach(async () => {
  site = await makeSite();
});
afterEach(async () => {
  if (socket) spawnSync("tmux", ["-L", socket, "kill-server"]);
  socket = null;
  await site.cleanup();
});

describe.skipIf(!HAVE_TMUX)("queue delete on a terminal", () => {
  it("asks, deletes nothing on no, and deletes with a progress bar on yes", async () => {
    const n = 150;
    const sb = await Switchboard.open({ root: site.qfiles, queue: "shunt" });
    await sb.enqueueMany(
      Array.from({ length: n }, (_, i) => ({
        message: Buffer.from(`m${i}`),
        meta: { sender: "", recipients: [`u${i}@example.net`], shuntedFrom: "outgoing", shuntReason: "test" },
      })),
    );
    const count = async () => (await readdir(path.join(site.qfiles, "shunt"))).length;
    socket = `qrunner-tty-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket!, ...args], { encoding: "utf8" });
    const cmd = `node ${BIN} queue delete --queue shunt -C ${site.configFile}; echo "EXITED $?"`;
    tmux("new-session", "-d", "-x", "80", "-y", "30", "-c", REPO, `${cmd}; ${cmd}; sleep 60`);
    const screen = () => tmux("capture-pane", "-p");

    await waitFor("the question", () =>
      screen().includes(`Delete ${n} entries (shunt ${n}) for good? [y/N]`),
    );
    tmux("send-keys", "n", "Enter");
    await waitFor("the first run to end", () => /EXITED \d+/.test(screen()));
    expect(screen()).toMatch(/nothing deleted\nEXITED 1/);
    expect(await count()).toBe(n);

    await waitFor("the question again", () => screen().split(`for good? [y/N]`).length === 3);
    tmux("send-keys", "y", "Enter");
    await waitFor("the second run to end", () => (screen().match(/EXITED \d+/g) ?? []).length === 2, 30_000);
    const s = screen();
    expect(s).toMatch(new RegExp(`^delete \\[#+\\] ${n}/${n} 100%.*$`, "m"));
    expect(s).toMatch(new RegExp(`^deleted ${n} entries\\nEXITED 0`, "m"));
    // with the bar on the terminal, no line per entry
    expect(s).not.toMatch(/shunt: deleted/);
    expect(await count()).toBe(0);
  });
});
