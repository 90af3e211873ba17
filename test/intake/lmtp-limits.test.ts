/**
 * The LMTP listener's hardening (issue 15) against a real client: a Unix socket with its mode (and,
 * as root, owner and group) checked with fs.stat, a stale socket replaced but never another file, a
 * cap on a connection's length (junk commands do not keep it open) and on its transactions, a memory
 * budget shared by all connections, and the 51st connection refused with 421.
 */
import { spawn } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LmtpListener } from "../../src/intake/lmtp.js";
import type { LmtpOptions } from "../../src/intake/lmtp-options.js";
import { loadAll } from "../../src/lists/load.js";
import { silentLogger } from "../../src/util/log.js";
import { message, type Site } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";
import { tempDir } from "../helpers/tmp.js";
import { LmtpClient, type Reply } from "./lmtp-client.js";

const DEV = { address: "dev@example.org", members: ["bob@example.com"] };

const t = testScope({ build: false });
let site: Site;

async function start(opts: Partial<LmtpOptions> = {}): Promise<LmtpListener> {
  site = await t.site("", [DEV]);
  const loaded = await loadAll(site.configFile);
  const listener = await LmtpListener.start({
    listen: "127.0.0.1:0",
    settings: () => loaded,
    logger: silentLogger(),
    ...opts,
  });
  t.own(listener);
  return listener;
}

async function connect(where: number | string): Promise<LmtpClient> {
  const { client, greeting } = await LmtpClient.connect(where);
  t.defer(() => client.close());
  expect(greeting.code).toBe(220);
  expect((await client.command("LHLO client.test")).code).toBe(250);
  return client;
}

/** One whole transaction to dev@; the reply after DATA. */
async function send(c: LmtpClient, body = "hello"): Promise<Reply> {
  expect((await c.command("MAIL FROM:<alice@example.net>")).code).toBe(250);
  expect((await c.command("RCPT TO:<dev@example.org>")).code).toBe(250);
  expect((await c.command("DATA")).code).toBe(354);
  c.sendData(message({ body }));
  return c.next();
}

async function queued(): Promise<number> {
  return (await site.files("incoming")).filter((f) => f.endsWith(".qf")).length;
}

const asRoot = process.getuid?.() === 0;

describe("LMTP on a Unix socket", () => {
  it("listens with the socket's mode, takes mail through it, and removes it on close", async () => {
    const tmp = t.own(await tempDir("qrunner-lmtp-sock-")).dir;
    const sock = path.join(tmp, "lmtp");
    const l = await start({ listen: `unix:${sock}`, socket: { mode: 0o620 } });
    expect(l.address.path).toBe(sock);
    const st = await stat(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o620);
    const c = await connect(sock);
    expect((await send(c)).code).toBe(250);
    expect(await queued()).toBe(1);
    await l.close();
    await expect(stat(sock)).rejects.toThrow(/ENOENT/);
  });

  it.runIf(asRoot)("gives the socket its owner and group (names or ids)", async () => {
    const tmp = t.own(await tempDir("qrunner-lmtp-sock-")).dir;
    const sock = path.join(tmp, "lmtp");
    const l = await start({ listen: `unix:${sock}`, socket: { owner: "nobody", group: 0 } });
    const st = await stat(sock);
    const nobody = (await readFile("/etc/passwd", "utf8")).split("\n").find((l) => l.startsWith("nobody:"));
    expect(st.uid).toBe(Number(nobody?.split(":")[2]));
    expect(st.gid).toBe(0);
    expect(st.mode & 0o777).toBe(0o660);
    await l.close();
    await expect(start({ listen: `unix:${sock}`, socket: { group: "no-such-group-qr" } })).rejects.toThrow(
      /no such group: "no-such-group-qr"/,
    );
  });

  it("replaces a socket left by a crashed process, but never a live one nor another file", async () => {
    const tmp = t.own(await tempDir("qrunner-lmtp-sock-")).dir;
    const sock = path.join(tmp, "lmtp");
    // a process that listens on the path and is killed: its socket file stays behind
    const child = spawn(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(sock)}, () => console.log("up"))`,
    ]);
    await new Promise((r) => child.stdout.once("data", r));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    expect((await stat(sock)).isSocket()).toBe(true);
    const l = await start({ listen: `unix:${sock}` });
    expect((await send(await connect(sock))).code).toBe(250);
    // a second listener on the live socket fails and leaves the first one working
    const settings = await loadAll(site.configFile);
    await expect(
      LmtpListener.start({ listen: `unix:${sock}`, settings: () => settings, logger: silentLogger() }),
    ).rejects.toThrow(/cannot listen for LMTP on unix:.*another process listens/);
    expect((await send(await connect(sock))).code).toBe(250);
    await l.close();
    // a file that is not a socket is never removed
    const file = path.join(tmp, "not-a-socket");
    await writeFile(file, "keep me");
    await expect(
      LmtpListener.start({ listen: `unix:${file}`, settings: () => settings, logger: silentLogger() }),
    ).rejects.toThrow(/exists and is not a socket/);
    expect(await readFile(file, "utf8")).toBe("keep me");
  });
});

describe("LMTP session limits", () => {
  it("closes a connection past its session length with 421, however busy it keeps itself with junk", async () => {
    const l = await start({ maxSessionMs: 400 });
    const c = await connect(l.address.port);
    // NOOPs and RSETs would reset an idle timer forever
    const replies: Reply[] = [];
    for (let i = 0; i < 400 && !c.isClosed; i++) {
      replies.push(await c.command(i % 2 ? "NOOP" : "RSET").catch(() => ({ code: 0, lines: [], text: "" })));
      await new Promise((r) => setTimeout(r, 20));
    }
    await c.closed();
    // the 421 may come between a command and its reply: read what is left
    for (;;) {
      const r = await c.next(200).catch(() => null);
      if (!r) break;
      replies.push(r);
    }
    const closing = replies.find((r) => r.code === 421);
    expect(closing?.text).toMatch(/session too long/);
  });

  it("answers a message in DATA when the session runs out, then closes with 421", async () => {
    const l = await start({ maxSessionMs: 300 });
    const c = await connect(l.address.port);
    expect((await c.command("MAIL FROM:<alice@example.net>")).code).toBe(250);
    expect((await c.command("RCPT TO:<dev@example.org>")).code).toBe(250);
    expect((await c.command("DATA")).code).toBe(354);
    // the session's time passes while the message is being sent
    await new Promise((r) => setTimeout(r, 500));
    c.sendData(message());
    expect((await c.next()).code).toBe(250);
    expect((await c.next()).code).toBe(421);
    await c.closed();
    expect(await queued()).toBe(1);
  });

  it("closes a connection after its last allowed transaction: the next MAIL gets 421", async () => {
    const l = await start({ maxTransactions: 2 });
    const c = await connect(l.address.port);
    expect((await send(c)).code).toBe(250);
    expect((await send(c)).code).toBe(250);
    const third = await c.command("MAIL FROM:<alice@example.net>");
    expect(third.code).toBe(421);
    expect(third.text).toMatch(/more than 2 transactions/);
    await c.closed();
    expect(await queued()).toBe(2);
  });

  it("holds at most its byte budget for all connections: past it 452, and the retry is taken", async () => {
    const l = await start({ maxBufferedBytes: 100_000 });
    const a = await connect(l.address.port);
    const b = await connect(l.address.port);
    // a is half-way through a 60 KB message
    expect((await a.command("MAIL FROM:<alice@example.net>")).code).toBe(250);
    expect((await a.command("RCPT TO:<dev@example.org>")).code).toBe(250);
    expect((await a.command("DATA")).code).toBe(354);
    a.write("Subject: a\r\nFrom: alice@example.net\r\n\r\n" + "a".repeat(60_000) + "\r\n");
    // b's 60 KB message does not fit beside it
    const refused = await send(b, "b".repeat(60_000));
    expect(refused.code).toBe(452);
    expect(refused.text).toMatch(/too much mail in flight/);
    // announced sizes over what is left are refused at MAIL already
    expect((await b.command("MAIL FROM:<alice@example.net> SIZE=90000")).code).toBe(452);
    a.write(".\r\n");
    expect((await a.next()).code).toBe(250);
    // a's bytes are given back: b's retry fits
    expect((await send(b, "b".repeat(60_000))).code).toBe(250);
    expect(await queued()).toBe(2);
  });

  it("takes 50 connections at once and answers the 51st with 421", async () => {
    const l = await start();
    const held = await Promise.all(Array.from({ length: 50 }, () => connect(l.address.port)));
    expect(held).toHaveLength(50);
    const socket = net.connect(l.address.port, "127.0.0.1");
    const first = await new Promise<string>((resolve) => socket.once("data", (d) => resolve(String(d))));
    socket.destroy();
    expect(first).toMatch(/^421 /);
    // one goes away: a new connection is served again
    expect((await held[0]!.command("QUIT")).code).toBe(221);
    await held[0]!.closed();
    expect((await send(await connect(l.address.port))).code).toBe(250);
  });
});
