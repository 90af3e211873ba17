/**
 * The LMTP listener against real clients (a line-exact one, and nodemailer in LMTP mode): one reply
 * per recipient after DATA, 250 only once that recipient's entry is on disk, 550 5.1.1 for addresses
 * that are no list's, 451 4.3.0 when the queue directory cannot take the entry (a full, then
 * read-only tmpfs: root only), the SIZE limit, no AUTH.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";
import nodemailer from "nodemailer";
import { describe, expect, it } from "vitest";
import { LmtpListener } from "../../src/intake/lmtp.js";
import type { IntakeSettings } from "../../src/intake/lmtp-options.js";
import type { LmtpOutcome } from "../../src/intake/transaction.js";
import { isLoopback, parseListen } from "../../src/intake/listen.js";
import { loadAll } from "../../src/lists/load.js";
import { signedVerpAddress, VerpKeys } from "../../src/lists/verp.js";
import { decodeEntry } from "../../src/queue/entry.js";
import { silentLogger } from "../../src/util/log.js";
import { message, type Site } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";
import { LmtpClient, type Reply } from "./lmtp-client.js";

const DEV = { address: "dev@example.org", members: ["bob@example.com"] };
const OPS = { address: "ops@example.org", members: ["carol@example.com"] };

const t = testScope({ build: false });
let site: Site;

interface Harness {
  site: Site;
  listener: LmtpListener;
  settings: { current: IntakeSettings };
  outcomes: Array<[LmtpOutcome, number]>;
}

async function start(opts: { maxSize?: number } = {}): Promise<Harness> {
  site = await t.site("", [DEV, OPS]);
  const loaded = await loadAll(site.configFile);
  const settings = { current: loaded as IntakeSettings };
  const outcomes: Array<[LmtpOutcome, number]> = [];
  const listener = await LmtpListener.start({
    listen: "127.0.0.1:0",
    settings: () => settings.current,
    logger: silentLogger(),
    onOutcome: (o, n) => outcomes.push([o, n]),
    ...(opts.maxSize !== undefined ? { maxSize: opts.maxSize } : {}),
  });
  t.own(listener);
  return { site, listener, settings, outcomes };
}

async function connect(h: Harness): Promise<LmtpClient> {
  const { client, greeting } = await LmtpClient.connect(h.listener.address.port);
  t.defer(() => client.close());
  expect(greeting.code).toBe(220);
  expect(greeting.text).toMatch(/LMTP/);
  const lhlo = await client.command("LHLO client.test");
  expect(lhlo.code).toBe(250);
  return client;
}

/** MAIL, RCPT for each address (their replies), DATA's 354. */
async function envelope(c: LmtpClient, from: string, rcpts: string[]): Promise<Reply[]> {
  expect((await c.command(`MAIL FROM:<${from}>`)).code).toBe(250);
  const replies: Reply[] = [];
  for (const r of rcpts) replies.push(await c.command(`RCPT TO:<${r}>`));
  return replies;
}

async function queued(s: Site): Promise<string[]> {
  return (await s.files("incoming")).filter((f) => f.endsWith(".qf"));
}

describe("LMTP listener", () => {
  it("speaks LMTP only, announces its SIZE limit, offers no AUTH or STARTTLS", async () => {
    const h = await start({ maxSize: 123_456 });
    const { client, greeting } = await LmtpClient.connect(h.listener.address.port);
    t.defer(() => client.close());
    expect(greeting.lines[0]).toMatch(/^220 .* LMTP/);
    expect((await client.command("EHLO client.test")).code).toBe(500);
    expect((await client.command("HELO client.test")).code).toBe(500);
    const lhlo = await client.command("LHLO client.test");
    expect(lhlo.code).toBe(250);
    const ext = lhlo.lines.map((l) => l.slice(4));
    expect(ext).toContain("SIZE 123456");
    expect(ext).toContain("PIPELINING");
    expect(ext.some((e) => /^AUTH|^STARTTLS/.test(e))).toBe(false);
    expect((await client.command("AUTH PLAIN AGJvYgBzZWNyZXQ=")).code).toBeGreaterThanOrEqual(500);
  });

  it("answers once per recipient after DATA, each 250 only once that recipient's entry is on disk", async () => {
    const h = await start();
    const c = await connect(h);
    const rcpt = await envelope(c, "alice@example.net", [
      "dev@example.org",
      "nobody@example.org",
      "OPS-request@Example.ORG",
    ]);
    expect(rcpt.map((r) => r.code)).toEqual([250, 550, 250]);
    // the unknown address is refused at RCPT, with the enhanced code an MTA bounces on
    expect(rcpt[1]?.lines[0]).toMatch(/^550 5\.1\.1 no such list or address: nobody@example\.org$/);
    expect((await c.command("DATA")).code).toBe(354);
    const msg = message({ id: "<lmtp-1@test.example>" });
    c.sendData(msg);
    const seen: Array<{ to: string; kind: string | undefined; list: string | undefined }> = [];
    // one reply per accepted recipient, in RCPT order; look at the disk the moment each arrives
    for (let i = 0; i < 2; i++) {
      const r = await c.next();
      expect(r.code, r.lines.join("\n")).toBe(250);
      expect(r.lines[0]).toMatch(/^250 2\.6\.0 queued as [0-9a-f]{40}$/);
      const id = r.text.replace("queued as ", "");
      const name = (await queued(h.site)).find((f) => f.includes(`+${id}.`));
      expect(name, `entry ${id} on disk when its 250 arrived`).toBeDefined();
      const entry = decodeEntry(name!, await readFile(path.join(h.site.qfiles, "incoming", name!)));
      expect(entry.message.equals(msg)).toBe(true);
      expect(entry.meta.sender).toBe("alice@example.net");
      expect(entry.meta.recipients).toEqual([entry.meta.to]);
      seen.push({ to: entry.meta.to ?? "", kind: entry.meta.kind, list: entry.meta.list });
    }
    expect(seen).toEqual([
      { to: "dev@example.org", kind: "post", list: "dev@example.org" },
      { to: "OPS-request@example.org", kind: "request", list: "ops@example.org" },
    ]);
    expect(await queued(h.site)).toHaveLength(2);
    // the session goes on: a second transaction, with the null sender
    await envelope(c, "", ["dev-bounces@example.org"]);
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(message({ id: "<lmtp-2@test.example>" }));
    expect((await c.next()).code).toBe(250);
    const bounce = (await queued(h.site)).length;
    expect(bounce).toBe(3);
    expect((await c.command("QUIT")).code).toBe(221);
    expect(h.outcomes).toEqual([
      ["unknown", 1],
      ["queued", 2],
      ["queued", 1],
    ]);
  });

  it("stores a message to 1,000 recipients of one list once, answers each of them, and refuses the 1,001st", async () => {
    const h = await start();
    // 998 members' signed VERP bounce addresses (unsigned ones are refused at RCPT)
    const members = Array.from({ length: 998 }, (_, i) => `u${i}@example.com`);
    await h.site.writeList({ ...DEV, members, extra: "verp: true" });
    const loaded = await loadAll(h.site.configFile);
    h.settings.current = loaded as IntakeSettings;
    const list = loaded.lists.get(DEV.address)!;
    const key = new VerpKeys().get(h.site.state);
    const verp = members.map((m) => signedVerpAddress(list, m, key, Date.now()));
    const c = await connect(h);
    const rcpts = ["dev@example.org", "dev-owner@example.org", ...verp];
    const replies = await envelope(c, "alice@example.net", [...rcpts, "dev-join@example.org"]);
    expect(replies.slice(0, 1000).every((r) => r.code === 250)).toBe(true);
    // RFC 5321 4.5.3.1.10: past the limit 452, which the MTA retries in another transaction
    expect(replies[1000]?.lines[0]).toMatch(/^452 4\.5\.3 /);
    expect((await c.command("DATA")).code).toBe(354);
    const msg = message({ id: "<lmtp-1000@test.example>", body: "x".repeat(100_000) });
    c.sendData(msg);
    const after: Reply[] = [];
    for (let i = 0; i < 1000; i++) after.push(await c.next());
    const ids = new Set(after.map((r) => (r.code === 250 ? r.text.replace("queued as ", "") : `${r.code}`)));
    expect([...ids]).toHaveLength(1);
    const files = await queued(h.site);
    expect(files).toHaveLength(1);
    expect(files[0]).toContain(`+${[...ids][0]}.`);
    const file = path.join(h.site.qfiles, "incoming", files[0]!);
    const bytes = (await stat(file)).size;
    // the message once, plus the addresses: not a thousand copies
    expect(bytes).toBeLessThan(msg.length + 64 * 1024);
    const entry = decodeEntry(file, await readFile(file));
    expect(entry.message.equals(msg)).toBe(true);
    expect(entry.meta.recipients).toEqual(rcpts);
    expect(entry.meta.list).toBe("dev@example.org");
    expect(entry.meta.kind).toBeUndefined(); // post, owner and bounces: no one kind
    expect(h.outcomes).toEqual([["queued", 1000]]);
  });

  it("stores one entry per list, each recipient answered with its list's entry", async () => {
    const h = await start();
    const c = await connect(h);
    const rcpts = [
      "dev@example.org",
      "ops-request@example.org",
      "dev-owner@example.org",
      "nobody@example.org",
      "ops@example.org",
      "dev-request@example.org",
    ];
    expect((await envelope(c, "alice@example.net", rcpts)).map((r) => r.code)).toEqual([
      250, 250, 250, 550, 250, 250,
    ]);
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(message());
    const after: Reply[] = [];
    for (let i = 0; i < 5; i++) after.push(await c.next());
    expect(after.every((r) => r.code === 250)).toBe(true);
    const idOf = (i: number): string => after[i]?.text.replace("queued as ", "") ?? "";
    // RCPT order, the refused one left out: dev, ops-request, dev-owner, ops, dev-request
    expect(idOf(0)).toBe(idOf(2));
    expect(idOf(0)).toBe(idOf(4));
    expect(idOf(1)).toBe(idOf(3));
    expect(idOf(0)).not.toBe(idOf(1));
    const files = await queued(h.site);
    expect(files).toHaveLength(2);
    const metas = await Promise.all(
      files.map(async (f) => {
        const file = path.join(h.site.qfiles, "incoming", f);
        return decodeEntry(file, await readFile(file)).meta;
      }),
    );
    const byList = new Map(metas.map((m) => [m.list, m]));
    expect(byList.get("dev@example.org")?.recipients).toEqual([
      "dev@example.org",
      "dev-owner@example.org",
      "dev-request@example.org",
    ]);
    expect(byList.get("ops@example.org")?.recipients).toEqual(["ops-request@example.org", "ops@example.org"]);
    // one recipient of a list alone: the entry `qrunner inject --to` writes
    await envelope(c, "alice@example.net", ["ops-owner@example.org"]);
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(message());
    const single = await c.next();
    const f = (await queued(h.site)).find((n) => n.includes(single.text.replace("queued as ", "")));
    const one = decodeEntry(f!, await readFile(path.join(h.site.qfiles, "incoming", f!))).meta;
    expect(one).toMatchObject({
      recipients: ["ops-owner@example.org"],
      to: "ops-owner@example.org",
      kind: "owner",
    });
  });

  it("a list removed between RCPT and DATA gets 550 after DATA; the others are queued", async () => {
    const h = await start();
    const c = await connect(h);
    expect(
      (await envelope(c, "alice@example.net", ["dev@example.org", "ops@example.org"])).map((r) => r.code),
    ).toEqual([250, 250]);
    // a config edit takes ops away while the client is sending
    const lists = new Map(h.settings.current.lists);
    lists.delete("ops@example.org");
    h.settings.current = { ...h.settings.current, lists };
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(message());
    const replies = [await c.next(), await c.next()];
    expect(replies.map((r) => r.code)).toEqual([250, 550]);
    expect(replies[1]?.lines[0]).toMatch(/^550 5\.1\.1 /);
    expect(await queued(h.site)).toHaveLength(1);
  });

  it("refuses data that is no message (554 per recipient) and messages over SIZE (552), queueing nothing", async () => {
    const h = await start({ maxSize: 5000 });
    const c = await connect(h);
    await envelope(c, "alice@example.net", ["dev@example.org", "ops@example.org"]);
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(Buffer.from("this is not\r\na message\r\n"));
    const bad = [await c.next(), await c.next()];
    expect(bad.map((r) => r.code)).toEqual([554, 554]);
    expect(bad[0]?.text).toMatch(/not an RFC 5322 message/);

    await envelope(c, "alice@example.net", ["dev@example.org", "ops@example.org"]);
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(message({ body: "x".repeat(20_000) }));
    const big = [await c.next(), await c.next()];
    expect(big.map((r) => r.code)).toEqual([552, 552]);
    // an announced size over the limit is refused at MAIL already
    expect((await c.command("MAIL FROM:<alice@example.net> SIZE=999999")).code).toBe(552);
    expect(await queued(h.site)).toEqual([]);
    expect(h.outcomes).toEqual([
      ["invalid", 2],
      ["too-big", 2],
    ]);
  });

  it("works with nodemailer in LMTP mode: accepted and rejected recipients", async () => {
    const h = await start();
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: h.listener.address.port,
      lmtp: true,
      ignoreTLS: true,
      name: "client.test",
    });
    try {
      const info = await transport.sendMail({
        envelope: {
          from: "alice@example.net",
          to: ["dev@example.org", "nobody@example.org", "ops-owner@example.org"],
        },
        raw: message({ id: "<nodemailer@test.example>" }),
      });
      expect(info.accepted).toEqual(["dev@example.org", "ops-owner@example.org"]);
      expect(info.rejected).toEqual(["nobody@example.org"]);
    } finally {
      transport.close();
    }
    expect(await queued(h.site)).toHaveLength(2);
  });

  it("close() is safe twice and refuses new connections afterwards", async () => {
    const h = await start();
    const port = h.listener.address.port;
    await h.listener.close();
    await h.listener.close();
    await expect(LmtpClient.connect(port)).rejects.toThrow(/ECONNREFUSED/);
  });

  const asRoot = process.getuid?.() === 0;
  it.runIf(asRoot)(
    "answers 451 4.3.0 per recipient on a full, then a read-only queue directory, and recovers",
    async () => {
      const h = await start();
      const incoming = path.join(h.site.qfiles, "incoming");
      await mkdir(incoming, { recursive: true });
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", incoming]);
      let mounted = true;
      try {
        const c = await connect(h);
        await envelope(c, "alice@example.net", ["dev@example.org", "ops@example.org"]);
        expect((await c.command("DATA")).code).toBe(354);
        c.sendData(message({ body: "x".repeat(200_000) }));
        const full = [await c.next(), await c.next()];
        expect(full.map((r) => r.code)).toEqual([451, 451]);
        expect(full[0]?.lines[0]).toMatch(/^451 4\.3\.0 cannot queue now: /);
        expect(await readdir(incoming)).toEqual([]);

        execFileSync("mount", ["-o", "remount,ro", incoming]);
        await envelope(c, "alice@example.net", ["dev@example.org"]);
        expect((await c.command("DATA")).code).toBe(354);
        c.sendData(message());
        const ro = await c.next();
        expect(ro.code).toBe(451);
        expect(ro.lines[0]).toMatch(/^451 4\.3\.0 /);
        expect(await readdir(incoming)).toEqual([]);

        execFileSync("umount", [incoming]);
        mounted = false;
        // the same session queues again once the directory takes files
        await envelope(c, "alice@example.net", ["dev@example.org"]);
        expect((await c.command("DATA")).code).toBe(354);
        c.sendData(message());
        expect((await c.next()).code).toBe(250);
        expect(await queued(h.site)).toHaveLength(1);
        expect(h.outcomes.filter(([o]) => o === "tempfail").reduce((n, [, k]) => n + k, 0)).toBe(3);
      } finally {
        if (mounted) execFileSync("umount", [incoming]);
      }
    },
  );
});

describe("listen addresses", () => {
  it("parses host:port, [v6]:port, and :port as loopback", () => {
    expect(parseListen("127.0.0.1:8024")).toEqual({ host: "127.0.0.1", port: 8024 });
    expect(parseListen("[::1]:8024")).toEqual({ host: "::1", port: 8024 });
    expect(parseListen(":9464")).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(parseListen("localhost:0")).toEqual({ host: "localhost", port: 0 });
    expect(() => parseListen("8024")).toThrow(/host:port/);
    expect(() => parseListen("127.0.0.1:70000")).toThrow(/host:port/);
  });

  it("knows loopback addresses", () => {
    for (const a of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "localhost"])
      expect(isLoopback(a)).toBe(true);
    for (const a of ["0.0.0.0", "10.0.0.1", "::", "192.168.1.1", "::ffff:10.0.0.1", "example.org"])
      expect(isLoopback(a)).toBe(false);
  });

  it("fails with the address and the reason when it cannot listen", async () => {
    site = await t.site("", [DEV]);
    const loaded = await loadAll(site.configFile);
    const listener = await LmtpListener.start({
      listen: "127.0.0.1:0",
      settings: () => loaded,
      logger: silentLogger(),
    });
    t.own(listener);
    const taken = `127.0.0.1:${listener.address.port}`;
    await expect(
      LmtpListener.start({ listen: taken, settings: () => loaded, logger: silentLogger() }),
    ).rejects.toThrow(new RegExp(`cannot listen for LMTP on ${taken}: .*EADDRINUSE`));
    expect(existsSync(site.qfiles)).toBe(false);
  });
});
