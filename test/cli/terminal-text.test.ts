/**
 * Finding 5 of issue 15: message text never drives the operator's terminal. The commands run in a real
 * terminal (tmux; skipped when it is not installed) on a message whose headers carry escape
 * sequences: they show the escapes as text and leave the terminal's title alone; `--raw` lets the
 * bytes through (the title changes); output to a pipe is the bytes as they are.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { escapeControls, escapeDeep } from "../../src/cli/terminal-text.js";
import { HeldStore } from "../../src/lists/held.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { BIN, REPO, makeSite, requireBuild, runCli, waitFor, type Site } from "../helpers/site.js";

const HAVE_TMUX = spawnSync("tmux", ["-V"]).status === 0;
const ESC = "\x1b";
const TITLE = `${ESC}]2;PWNED${"\x07"}`;
const RED = `${ESC}[31mRED${ESC}[0m`;

describe("escapeControls", () => {
  it("escapes C0 (but line breaks and tabs in lines mode), DEL, C1 and bidi controls as \\uXXXX; leaves text", () => {
    expect(escapeControls(`a${TITLE}b\u009b2Jc\u202ed\x7f`)).toBe(
      "a\\u001b]2;PWNED\\u0007b\\u009b2Jc\\u202ed\\u007f",
    );
    expect(escapeControls("x\r\ny\tz\rw\n")).toBe("x\\u000d\\u000ay\\u0009z\\u000dw\\u000a");
    expect(escapeControls("x\r\ny\tz\rw\n", { lines: true })).toBe("x\r\ny\tz\\u000dw\n");
    expect(escapeControls("héllo wörld — ünïcode ✓")).toBe("héllo wörld — ünïcode ✓");
  });

  it("keeps JSON valid and equal in value", () => {
    const v = { s: `\u009b\u202e${ESC}x`, n: [1, "\u0085"] };
    const text = escapeControls(JSON.stringify(v, null, 2), { lines: true });
    expect(text).not.toMatch(/[\u0080-\u009f\u202e]/);
    expect(JSON.parse(text)).toEqual(v);
  });

  it("escapes every string of a value, deeply, and nothing else", () => {
    expect(escapeDeep({ a: [`${ESC}[2J`, 3], b: { c: "ok\n", d: null, e: true } })).toEqual({
      a: ["\\u001b[2J", 3],
      b: { c: "ok\\u000a", d: null, e: true },
    });
  });
});

let site: Site;
let socket: string | null = null;

beforeAll(() => requireBuild());
beforeEach(async () => {
  site = await makeSite("", [{ address: "dev@example.org", members: ["alice@example.net"] }]);
});
afterEach(async () => {
  if (socket) spawnSync("tmux", ["-L", socket, "kill-server"]);
  socket = null;
  await site.cleanup();
});

/** A shunted entry, a held post and a bounce file, each carrying escape sequences. */
async function hostileSite(): Promise<{ id: string; bounceFile: string }> {
  const message = Buffer.from(
    `From: alice@example.net\r\nTo: dev@example.org\r\nSubject: hi ${TITLE} ${RED}\r\nMessage-ID: <t@x>\r\n\r\nbody\r\n`,
    "latin1",
  );
  const shunt = await Switchboard.open({ root: site.qfiles, queue: "shunt" });
  const id = await shunt.enqueue(message, {
    sender: "alice@example.net",
    recipients: ["dev@example.org"],
    shuntedFrom: "incoming",
    shuntReason: `failed: ${ESC}[1mBOLD${ESC}[0m`,
  });
  shunt.close();
  await new HeldStore(site.state, "dev@example.org").hold(message, {
    sender: "mallory@example.com",
    reason: "post from a non-member",
    subject: "evil \u202etxt.exe\u202c \u009b2J",
  });
  const dsn = await readFile(path.join(REPO, "test/fixtures/bounces/postfix-failed.eml"), "latin1");
  const bounceFile = path.join(site.dir, "bounce.eml");
  await writeFile(
    bounceFile,
    // the detector drops C0 and C1 from a diagnostic itself; a bidi override (UTF-8) it keeps
    dsn.replace("Diagnostic-Code: smtp; 550 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 \u202eBIDI"),
    "utf8",
  );
  return { id, bounceFile };
}

describe.skipIf(!HAVE_TMUX)("commands that print message text, on a terminal", () => {
  it("escape control characters; --raw lets the bytes through", async () => {
    const { id, bounceFile } = await hostileSite();
    socket = `qrunner-term-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket!, ...args], { encoding: "utf8" });
    const q = (args: string, n: number) => `node ${BIN} ${args} -C ${site.configFile}; echo "END${n} $?"`;
    const script = [
      q(`queue show ${id}`, 1),
      q("queue list shunt", 2),
      q(`bounce scan ${bounceFile}`, 3),
      q("held", 4),
      'read -r _; clear; printf "\\033[0m"',
      q(`queue show ${id} --raw`, 5),
      "sleep 60",
    ].join("; ");
    tmux("new-session", "-d", "-x", "220", "-y", "60", "-c", REPO, script);
    const screen = () => tmux("capture-pane", "-p", "-J", "-S", "-200");
    const title = () => tmux("display-message", "-p", "#{pane_title}").trim();

    await waitFor("the escaped runs", () => /END4 \d/.test(screen()), 30_000);
    const s = screen();
    for (const n of [1, 2, 3, 4]) expect(s).toMatch(new RegExp(`END${n} [01]\\b`));
    // queue show: the Subject header, its escapes as text
    expect(s).toContain("Subject: hi \\u001b]2;PWNED\\u0007 \\u001b[31mRED\\u001b[0m");
    // queue list: the shunt reason
    expect(s).toContain("failed: \\u001b[1mBOLD\\u001b[0m");
    // bounce scan: the diagnostic
    expect(s).toContain("550 5.1.1 \\u202eBIDI");
    // held: the subject's bidi override and C1 CSI
    expect(s).toContain("evil \\u202etxt.exe\\u202c \\u009b2J");
    expect(title()).not.toBe("PWNED");

    tmux("send-keys", "Enter");
    await waitFor("the raw run", () => /END5 0/.test(screen()), 30_000);
    // the bytes reached the terminal: it took the title and coloured the text
    await waitFor("the title set by the raw bytes", () => title() === "PWNED");
    const coloured = tmux("capture-pane", "-p", "-e", "-J");
    expect(coloured).toContain(`${ESC}[31mRED`);
    expect(coloured).not.toContain("\\u001b");
  });
});

describe("commands that print message text, into a pipe", () => {
  it("write the bytes as they are", async () => {
    const { id } = await hostileSite();
    const show = await runCli(["queue", "show", id, "-C", site.configFile]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`Subject: hi ${TITLE} ${RED}`);
    const list = await runCli(["queue", "list", "shunt", "-C", site.configFile]);
    expect(list.stdout).toContain(`failed: ${ESC}[1mBOLD`);
    const held = await runCli(["held", "--json", "-C", site.configFile]);
    expect((JSON.parse(held.stdout) as { subject: string }[])[0]?.subject).toBe(
      "evil \u202etxt.exe\u202c \u009b2J",
    );
  });
});
