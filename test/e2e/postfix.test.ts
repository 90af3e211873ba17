/**
 * qrunner behind a real Postfix (Debian's package; .ci/run installs it). The test runs a private
 * Postfix instance of its own (config directory, queue directory and maillog_file under a temp dir,
 * no chroot, loopback ports only; the system's /etc/postfix and /var/spool/postfix are not touched):
 *
 *   test --SMTP--> Postfix smtpd :IN --+-- lmtp.example.org: lmtp:inet:127.0.0.1:<qrunner's LMTP>
 *                                      +-- sock.example.org: lmtp:unix:<socket, root:postfix 0660>
 *                                      +-- pipe.example.org: pipe(8) `node bin/qrunner inject ...`
 *   qrunner outgoing --SMTP--> Postfix smtpd :RELAY --relayhost--> recording SMTP server
 *
 * Postfix's own bounces (for addresses qrunner refused) go out through the same relay, so the
 * recording server also shows what each refusal made Postfix do. Needs root (Postfix starts as root
 * and drops to its users; the pipe runs as `nobody`, standing in for the `qrunner` user).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSink, type Sink } from "../helpers/smtp-sink.js";
import {
  BIN,
  logLines,
  makeSite,
  message,
  requireBuild,
  spawnCli,
  waitFor,
  type Running,
  type Site,
} from "../helpers/site.js";
import { LmtpListener } from "../../src/intake/lmtp.js";
import { loadAll } from "../../src/lists/load.js";
import { silentLogger } from "../../src/util/log.js";
import { LmtpClient } from "../intake/lmtp-client.js";

const POSTFIX = "/usr/sbin/postfix";
const PIPE_USER = "nobody";
const NODE = process.execPath;

function skipReason(): string | null {
  if (!existsSync(POSTFIX)) return `no ${POSTFIX}: install Debian's postfix package (.ci/run does)`;
  if (process.getuid?.() !== 0) return "not root: a private Postfix instance must be started as root";
  const probe = spawnSync("runuser", ["-u", PIPE_USER, "--", NODE, BIN, "--version"], { encoding: "utf8" });
  if (probe.status !== 0)
    return `user ${PIPE_USER} cannot run ${BIN} (the pipe runs as that user; is the checkout world-readable?): ${probe.stderr || probe.error?.message || ""}`.trim();
  return null;
}
const SKIP = skipReason();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(a && typeof a === "object" ? a.port : 0));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

interface Env {
  work: string;
  conf: string;
  queue: string;
  site: Site;
  sink: Sink;
  master: Running;
  /** a second LMTP listener, on a Unix socket only the postfix group may use */
  sockListener: LmtpListener;
  inPort: number;
  started: boolean;
}
let env: Env | undefined;

/** The whole test, Postfix start to drained queues, must finish within this (ms from beforeAll). */
const BUDGET_MS = 70_000;
let deadline = 0;

/** Wait for `cond` within what is left of the budget; on failure say what, with the maillog's tail. */
async function within(
  what: string,
  cond: () => boolean | Promise<boolean>,
  extra?: () => Promise<string>,
): Promise<void> {
  try {
    await waitFor(what, cond, Math.max(1000, deadline - Date.now()));
  } catch (err) {
    throw new Error(
      `${err instanceof Error ? err.message : String(err)}${extra ? await extra() : ""}${await tail()}`,
    );
  }
}

const maillog = async (): Promise<string> =>
  env ? readFile(path.join(env.work, "maillog"), "utf8").catch(() => "") : "";
const tail = async (): Promise<string> =>
  `\n--- maillog (tail)\n${(await maillog()).split("\n").slice(-40).join("\n")}`;

function mainCf(work: string, queue: string, lmtpPort: number, sinkPort: number): string {
  return `compatibility_level = 3.6
queue_directory = ${queue}
data_directory = ${work}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.localhost
mydomain = test.localhost
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = lmtp.example.org, pipe.example.org, sock.example.org
transport_maps = inline:{ lmtp.example.org=lmtp:inet:127.0.0.1:${lmtpPort}, pipe.example.org=qrunner:, sock.example.org=lmtp:unix:${work}/lmtp.sock }
relayhost = [127.0.0.1]:${sinkPort}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
local_transport = error:local delivery disabled
alias_maps =
alias_database =
smtp_dns_support_level = disabled
smtp_tls_security_level = none
lmtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
append_dot_mydomain = no
readme_directory = no
maillog_file_prefixes = ${work}
maillog_file = ${work}/maillog
qrunner_destination_recipient_limit = 1
export_environment = TZ MAIL_CONFIG LANG QRUNNER_CACHE_DIR=${work}/cache
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
`;
}

function masterCf(inPort: number, relayPort: number, configFile: string): string {
  return `127.0.0.1:${inPort} inet n - n - - smtpd
127.0.0.1:${relayPort} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
qrunner   unix  -       n       n       -       -       pipe
  user=${PIPE_USER} null_sender= argv=${NODE} ${BIN} inject -C ${configFile} --to=\${recipient} --from=\${sender}
`;
}

/** Files in Postfix's queues that still hold mail. */
async function postfixBacklog(queue: string): Promise<number> {
  let n = 0;
  for (const q of ["maildrop", "incoming", "active", "deferred", "hold"]) {
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(path.join(d, e.name));
        else n++;
      }
    };
    await walk(path.join(queue, q));
  }
  return n;
}

async function stopPostfix(e: Env): Promise<void> {
  const pid = Number(
    (await readFile(path.join(e.queue, "pid", "master.pid"), "utf8").catch(() => "")).trim(),
  );
  spawnSync(POSTFIX, ["-c", e.conf, "stop"], { stdio: "ignore" });
  const alive = (): boolean => {
    try {
      return pid > 0 && process.kill(pid, 0);
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive()) process.kill(pid, "SIGKILL");
}

/** One message by SMTP to Postfix's inbound port; `from` "" is the null sender. */
async function submit(from: string, to: string[], raw: Buffer): Promise<void> {
  const { client, greeting } = await LmtpClient.connect(env!.inPort);
  try {
    expect(greeting.code).toBe(220);
    expect((await client.command("EHLO client.test")).code).toBe(250);
    expect((await client.command(`MAIL FROM:<${from}>`)).code).toBe(250);
    for (const r of to) expect((await client.command(`RCPT TO:<${r}>`)).code, r).toBe(250);
    expect((await client.command("DATA")).code).toBe(354);
    client.sendData(raw);
    const r = await client.next();
    expect(r.code, r.lines.join("\n")).toBe(250);
    await client.command("QUIT");
  } finally {
    client.close();
  }
}

/** The DSN Postfix sent back to `to` about `rcpt`, once it arrived at the recording server. */
async function dsnFor(rcpt: string): Promise<string> {
  let text = "";
  await within(`Postfix's bounce for ${rcpt}`, () => {
    const m = env!.sink.messages.find((x) => x.from === "" && x.raw.toString("latin1").includes(`<${rcpt}>`));
    text = m?.raw.toString("latin1") ?? "";
    return text !== "";
  });
  return text;
}

describe.skipIf(SKIP !== null)(`qrunner behind a real Postfix${SKIP ? ` (skipped: ${SKIP})` : ""}`, () => {
  beforeAll(async () => {
    requireBuild();
    deadline = Date.now() + BUDGET_MS;
    const work = await mkdtemp("/tmp/qrunner-postfix-");
    await chmod(work, 0o755);
    const conf = path.join(work, "etc");
    const queue = path.join(work, "spool");
    await mkdir(conf);
    await mkdir(queue);
    await mkdir(path.join(work, "data"));
    await chown(path.join(work, "data"), ...ids("postfix"));
    await mkdir(path.join(work, "cache"), { mode: 0o700 });
    await chown(path.join(work, "cache"), ...ids(PIPE_USER));
    const sink = await startSink();
    const [inPort, relayPort] = [await freePort(), await freePort()];
    const site = await makeSite(
      [
        `smtp: { hosts: [{ host: 127.0.0.1, port: ${relayPort}, name: postfix }] }`,
        `intake: { lmtp: "127.0.0.1:0" }`,
        "",
      ].join("\n"),
      [
        {
          address: "dev@lmtp.example.org",
          members: ["bob@example.com", "carol@example.net"],
          extra: "archive: false\nnonmembers: accept",
        },
        {
          address: "news@sock.example.org",
          members: ["erin@example.com"],
          extra: "archive: false\nnonmembers: accept",
        },
        {
          address: "ops@pipe.example.org",
          members: ["dave@example.com"],
          extra: "archive: false\nnonmembers: accept",
        },
      ],
    );
    // the pipe runs as PIPE_USER: it reads the config and lists and writes qfiles/incoming
    await mkdir(path.join(site.qfiles, "incoming"), { recursive: true });
    execFileSync("chown", ["-R", PIPE_USER, site.dir]);
    const master = spawnCli(["start", "-C", site.configFile]);
    const settings = await loadAll(site.configFile);
    const sockListener = await LmtpListener.start({
      listen: `unix:${work}/lmtp.sock`,
      socket: { mode: 0o660, group: "postfix" },
      settings: () => settings,
      logger: silentLogger(),
    });
    env = { work, conf, queue, site, sink, master, sockListener, inPort, started: false };
    let lmtpPort = 0;
    await within("qrunner's LMTP listener", () => {
      const l = logLines(master.stdout()).find((x) => x["msg"] === "LMTP listening");
      lmtpPort = Number(
        String(l?.["address"] ?? "")
          .split(":")
          .pop(),
      );
      return lmtpPort > 0;
    });
    await within("all qrunner workers ready", () =>
      logLines(master.stdout()).some((l) => l["msg"] === "all workers ready"),
    );

    await writeFile(path.join(conf, "main.cf"), mainCf(work, queue, lmtpPort, sink.port));
    await writeFile(path.join(conf, "master.cf"), masterCf(inPort, relayPort, site.configFile));
    const start = spawnSync(POSTFIX, ["-c", conf, "start"], { encoding: "utf8" });
    env.started = true;
    if (start.status !== 0)
      throw new Error(`postfix -c ${conf} start failed: ${start.stderr}${await tail()}`);
    await within(
      "Postfix's smtpd ports",
      async () => (await canConnect(inPort)) && (await canConnect(relayPort)),
    );
  });

  afterAll(async () => {
    const e = env;
    env = undefined;
    if (!e) return;
    if (e.started) await stopPostfix(e);
    await e.sockListener.close();
    if (e.master.child.exitCode === null && e.master.child.signalCode === null) {
      e.master.child.kill("SIGTERM");
      await e.master.exited;
    }
    await e.sink.close();
    await e.site.cleanup();
    await rm(e.work, { recursive: true, force: true });
  });

  it("takes mail by LMTP: one reply per recipient, unknown addresses bounced by Postfix with 5.1.1", async () => {
    const e = env!;
    await submit(
      "alice@example.net",
      ["dev@lmtp.example.org", "nobody@lmtp.example.org"],
      message({ to: "dev@lmtp.example.org", id: "<pf-lmtp@test.example>" }),
    );
    await within("the LMTP post at both members", () => {
      const d = e.sink.deliveries();
      return (
        d.get("<pf-lmtp@test.example> bob@example.com") === 1 &&
        d.get("<pf-lmtp@test.example> carol@example.net") === 1
      );
    });
    const post = e.sink.messages.find((m) => m.messageId === "<pf-lmtp@test.example>");
    expect(post?.from).toBe("dev-bounces@lmtp.example.org");
    const dsn = await dsnFor("nobody@lmtp.example.org");
    expect(dsn).toMatch(/Status: 5\.1\.1/);
    expect(dsn).toMatch(/no such\s+list or address:\s+nobody@lmtp\.example\.org/);
    const log = await maillog();
    expect(log).toMatch(
      /to=<dev@lmtp\.example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent \(250 2\.6\.0 queued as [0-9a-f]{40}\)/,
    );
  });

  it("takes mail by LMTP on a Unix socket that the postfix group may use and others may not", async () => {
    const e = env!;
    const sock = path.join(e.work, "lmtp.sock");
    const st = await stat(sock);
    expect([st.isSocket(), st.mode & 0o777, st.gid]).toEqual([true, 0o660, ids("postfix")[1]]);
    // a user outside the group cannot even connect
    const other = spawnSync(
      "runuser",
      [
        "-u",
        PIPE_USER,
        "--",
        NODE,
        "-e",
        `require("net").connect(${JSON.stringify(sock)}).on("error", (e) => { console.log(e.code); process.exit(1) })`,
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    expect(other.stdout.trim()).toBe("EACCES");
    await submit(
      "alice@example.net",
      ["news@sock.example.org"],
      message({ to: "news@sock.example.org", id: "<pf-sock@test.example>" }),
    );
    await within(
      "the post by the Unix socket at its member",
      () => e.sink.deliveries().get("<pf-sock@test.example> erin@example.com") === 1,
    );
    expect(await maillog()).toMatch(
      /to=<news@sock\.example\.org>, relay=.*lmtp\.sock.*status=sent \(250 2\.6\.0 queued as [0-9a-f]{40}\)/,
    );
  });

  it("takes mail by pipe(8): exit 0 delivers, 67 bounces (5.1.1), the null sender arrives as the null sender", async () => {
    const e = env!;
    await submit(
      "alice@example.net",
      ["ops@pipe.example.org", "nobody@pipe.example.org"],
      message({ to: "ops@pipe.example.org", id: "<pf-pipe@test.example>" }),
    );
    await submit(
      "",
      ["ops-bounces@pipe.example.org"],
      dsnMessage("ops-bounces@pipe.example.org", "dave@example.com"),
    );
    await within(
      "the piped post at its member",
      () => e.sink.deliveries().get("<pf-pipe@test.example> dave@example.com") === 1,
    );
    const dsn = await dsnFor("nobody@pipe.example.org");
    expect(dsn).toMatch(/Status: 5\.1\.1/);
    expect(dsn).toMatch(/no such\s+list\s+or\s+address/);
    await within("the null-sender message piped in", async () =>
      /to=<ops-bounces@pipe\.example\.org>, relay=qrunner.*status=sent/.test(await maillog()),
    );
    const log = await maillog();
    expect(log).toMatch(
      /to=<ops@pipe\.example\.org>, relay=qrunner.*status=sent \(delivered via qrunner service \(queued [0-9a-f]{40} in incoming/,
    );
    // the null sender came through as the null sender: qrunner took it as a bounce and scored it
    await within("the bounce scored for dave", () =>
      logLines(e.master.stdout()).some(
        (l) => l["msg"] === "bounce scored" && l["member"] === "dave@example.com",
      ),
    );
    const routed = logLines(e.master.stdout()).find((l) => l["msg"] === "routed" && l["role"] === "bounces");
    expect(routed?.["list"]).toBe("ops@pipe.example.org");
  });

  it("drains: nothing left in Postfix's queues or qrunner's", async () => {
    const e = env!;
    await within("Postfix's queues to drain", async () => (await postfixBacklog(e.queue)) === 0);
    const left = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const q of ["incoming", "outgoing", "bounce", "command", "backoff", "shunt", "bad"])
        for (const f of await e.site.files(q))
          if (f.endsWith(".qf") || f.endsWith(".wip")) out.push(`${q}/${f}`);
      return out;
    };
    await within(
      "qrunner's queues to drain",
      async () => (await left()).length === 0,
      async () => `: ${(await left()).join(", ")}`,
    );
    // each post reached each member exactly once
    expect([...e.sink.deliveries().entries()].filter(([k]) => k.startsWith("<pf-")).sort()).toEqual([
      ["<pf-lmtp@test.example> bob@example.com", 1],
      ["<pf-lmtp@test.example> carol@example.net", 1],
      ["<pf-pipe@test.example> dave@example.com", 1],
      ["<pf-sock@test.example> erin@example.com", 1],
    ]);
  });
});

/** An RFC 3464 delivery status notification saying `failed` was refused with 5.1.1. */
function dsnMessage(to: string, failed: string): Buffer {
  return Buffer.from(
    [
      "From: MAILER-DAEMON@mx.example.com",
      `To: ${to}`,
      "Subject: Undelivered Mail Returned to Sender",
      "Message-ID: <pf-dsn@test.example>",
      "Date: Sat, 28 Nov 2026 12:00:00 +0000",
      "MIME-Version: 1.0",
      'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
      "",
      "--B",
      "Content-Type: text/plain",
      "",
      `${failed}: mailbox unknown`,
      "--B",
      "Content-Type: message/delivery-status",
      "",
      "Reporting-MTA: dns; mx.example.com",
      "",
      `Final-Recipient: rfc822; ${failed}`,
      "Action: failed",
      "Status: 5.1.1",
      "Diagnostic-Code: smtp; 550 5.1.1 user unknown",
      "",
      "--B--",
      "",
    ].join("\r\n"),
  );
}

function ids(user: string): [number, number] {
  const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", user], { encoding: "utf8" }).trim());
  return [uid, gid];
}
