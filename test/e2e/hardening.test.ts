/**
 * Hardening, end to end with the real CLI and runners: private files whatever the umask, no running as
 * root by accident, addresses that cannot reach outside the queue and state directories (list files,
 * inject, mail commands), no header injection through replies and notices, SMTP passwords that never
 * show, bounded input, and SMTP timeouts that keep a silent server from holding a runner.
 */
import { spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { chmod, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { decodeEntry } from "../../src/queue/entry.js";
import { injectMessage } from "../../src/intake/inject.js";
import { BIN, REPO, message, runCli, spawnCli, waitFor, type Site, runOnce } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";

const t = testScope();

const DEV = {
  address: "dev@example.org",
  owners: ["owner@example.org"],
  members: ["alice@example.net", "bob@example.com"],
  extra: 'subject_prefix: "[dev] "\nnonmembers: hold\narchive: true',
};

function smtp(port: number, extra = ""): string {
  return `smtp:\n  hosts:\n    - { host: 127.0.0.1, port: ${port}, connect_timeout: 2s, timeout: 5s${extra} }\n  probe_max: 1s\nbackoff: { schedule: [1h], max_age: 5d }\n`;
}

/** `qrunner ARGS` through a shell with umask 022, as an operator's login shell would run it. */
function withUmask(
  args: string[],
  input = "",
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  return runShell(`umask 022 && exec ${quoted}`, input);
}

function runShell(
  script: string,
  input: string,
  env: NodeJS.ProcessEnv = { ...process.env, QRUNNER_ALLOW_ROOT: "1" },
) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn("/bin/sh", ["-c", script], { cwd: REPO, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every path under `dir` (files and directories) with its mode. */
async function walk(dir: string): Promise<{ path: string; dir: boolean; mode: number }[]> {
  const out: { path: string; dir: boolean; mode: number }[] = [];
  const st = await stat(dir).catch(() => null);
  if (!st) return out;
  out.push({ path: dir, dir: st.isDirectory(), mode: st.mode & 0o777 });
  if (st.isDirectory())
    for (const name of await readdir(dir)) out.push(...(await walk(path.join(dir, name))));
  return out;
}

async function once(s: Site, runner: string): Promise<void> {
  const r = await withUmask(["start", "-C", s.configFile, `--runner=${runner}`, "--slice=0/1", "--once"]);
  expect(r.code, `${runner}: ${r.stderr}`).toBe(0);
}

/** The messages queued in a queue, decoded. */
async function queued(
  s: Site,
  queue: string,
): Promise<{ meta: { recipients: string[] }; message: Buffer }[]> {
  const dir = path.join(s.qfiles, queue);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(".qf"));
  return Promise.all(names.map(async (n) => decodeEntry(n, await readFile(path.join(dir, n)))));
}

function headerBlock(raw: Buffer): string {
  const text = raw.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  return end < 0 ? text : text.slice(0, end);
}

describe("private files", () => {
  it("creates queue files, state, status, logs and archives 0600 in 0700 directories, whatever the umask", async () => {
    const sink = await t.sink();
    const site = await t.site(smtp(sink.port) + "", [DEV]);
    await writeFile(
      site.configFile,
      (await readFile(site.configFile, "utf8")).replace(
        "log: { level: info }",
        "log: { level: info, file: ../var/log/qrunner.log }",
      ),
    );
    const post = message({ from: "alice@example.net", id: "<perm-1@x>" });
    expect(
      (await withUmask(["inject", "-C", site.configFile, "--to=dev@example.org"], post.toString("latin1")))
        .code,
    ).toBe(0);
    const held = message({ from: "stranger@example.com", id: "<perm-2@x>" });
    expect(
      (await withUmask(["inject", "-C", site.configFile, "--to=dev@example.org"], held.toString("latin1")))
        .code,
    ).toBe(0);
    const join = message({
      from: "newbie@example.com",
      to: "dev-request@example.org",
      subject: "join",
      id: "<perm-3@x>",
    });
    expect(
      (
        await withUmask(
          ["inject", "-C", site.configFile, "--to=dev-request@example.org"],
          join.toString("latin1"),
        )
      ).code,
    ).toBe(0);
    for (const r of ["incoming", "command", "archive", "outgoing"]) await once(site, r);
    await sink.waitFor(2);
    // the master: lock, pid file, status.json
    const master = spawn(
      "/bin/sh",
      ["-c", `umask 022 && exec '${process.execPath}' '${BIN}' start -C '${site.configFile}'`],
      {
        cwd: REPO,
        env: { ...process.env, QRUNNER_ALLOW_ROOT: "1" },
        stdio: "ignore",
      },
    );
    const exited = new Promise((r) => master.on("exit", r));
    await waitFor(
      "status.json",
      async () => (await stat(path.join(site.state, "status.json")).catch(() => null)) !== null,
    );
    expect((await runCli(["stop", "-C", site.configFile])).code).toBe(0);
    await exited;

    const all = [...(await walk(site.qfiles)), ...(await walk(site.state))];
    expect(all.filter((e) => !e.dir).length).toBeGreaterThan(4);
    expect(all.some((e) => e.path.endsWith(".mbox"))).toBe(true);
    expect(all.some((e) => e.path.endsWith("qrunner.log"))).toBe(true);
    const open = all.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path} ${e.mode.toString(8)}`);
    expect(open).toEqual([]);
  });
});

describe("the settings cache of inject", () => {
  // The cache once lived in the shared tmpdir under a predictable name with a temp file opened
  // without O_EXCL: a planted symlink made inject overwrite the file it pointed to. It now lives in
  // a private folder that is refused when it is a link, not ours, or open to others.
  it("never uses a cache folder that is a planted symlink or open to others", async () => {
    const site = await t.site(smtp(2525), [DEV]);
    const planted = path.join(site.dir, "attacker");
    await mkdir(planted, { mode: 0o700 });
    const link = path.join(site.dir, "cache-link");
    await symlink(planted, link);
    const open = path.join(site.dir, "cache-open");
    await mkdir(open, { mode: 0o700 });
    await chmod(open, 0o777);
    const before = process.env["QRUNNER_CACHE_DIR"];
    try {
      for (const dir of [link, open]) {
        process.env["QRUNNER_CACHE_DIR"] = dir;
        await injectMessage(site.configFile, message(), { to: "dev@example.org" });
        await injectMessage(site.configFile, message(), { to: "dev@example.org" });
        expect(await readdir(dir)).toEqual([]);
      }
    } finally {
      if (before === undefined) delete process.env["QRUNNER_CACHE_DIR"];
      else process.env["QRUNNER_CACHE_DIR"] = before;
    }
    expect(await readdir(planted)).toEqual([]);
  });
});

describe("root", () => {
  it.runIf(process.getuid?.() === 0)(
    "start refuses to run as root unless --allow-root or QRUNNER_ALLOW_ROOT=1",
    async () => {
      const site = await t.site(smtp(2525), [DEV]);
      const env = { ...process.env };
      delete env["QRUNNER_ALLOW_ROOT"];
      for (const args of [["start"], ["start", "--runner=incoming", "--slice=0/1", "--once"]]) {
        const r = await runShell(
          `exec '${process.execPath}' '${BIN}' ${args.join(" ")} -C '${site.configFile}'`,
          "",
          env,
        );
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/refusing to run as root/);
      }
      expect(await readdir(site.state).catch(() => [])).toEqual([]);
      const allowed = await runShell(
        `exec '${process.execPath}' '${BIN}' start --allow-root --runner=incoming --slice=0/1 --once -C '${site.configFile}'`,
        "",
        env,
      );
      expect(allowed.code, allowed.stderr).toBe(0);
    },
  );
});

/** Addresses that look like paths, commands or quoting: refused everywhere. */
const OUTSIDE = [
  "../../etc@example.org",
  "dev/../../x@example.org",
  "a/b@example.org",
  "dev@example.org/..",
  "$(reboot)@example.org",
  "dev;rm@example.org",
  "dev@exa mple.org",
  '"quoted"@example.org',
  "dev\\x@example.org",
];

/**
 * RFC 5322 atext that a shell interprets. `inject` and mail commands refuse them (addresses.ts);
 * list files still admit them as members (schema.ts ADDRESS_RE): a known gap, reported.
 */
const SHELLISH = [
  "dev`id`@example.org",
  "dev|cat@example.org",
  "dev&x@example.org",
  "dev*@example.org",
  "dev?x@example.org",
];

describe("addresses cannot reach outside the queue and state directories", () => {
  it("list files: a bad list address or member is an error with file:line:col", async () => {
    const site = await t.site(smtp(2525), []);
    const cases = [
      ...[...OUTSIDE, ...SHELLISH].map((a) => `address: ${JSON.stringify(a)}\nowners: [owner@example.org]\n`),
      'address: "dev\\0@example.org"\nowners: [owner@example.org]\n',
      ...OUTSIDE.map(
        (a) => `address: dev@example.org\nowners: [owner@example.org]\nmembers: [${JSON.stringify(a)}]\n`,
      ),
      'address: dev@example.org\nowners: [owner@example.org]\nmembers: ["x\\0@example.org"]\n',
      'address: dev@example.org\nowners: [owner@example.org]\nmembers: ["x@example.org\\r\\nBcc: victim@evil.example"]\n',
    ];
    for (const body of cases) {
      const file = path.join(site.listsDir, "dev@example.org.yaml");
      await writeFile(file, body);
      const r = await runCli(["config", "check", "-C", site.configFile]);
      expect({ body, code: r.code }).toEqual({ body, code: 1 });
      expect(r.stdout + r.stderr).toMatch(/dev@example\.org\.yaml:\d+:\d+: /);
    }
    expect(await readdir(site.state).catch(() => [])).toEqual([]);
  });

  // members in list files once could hold ` | & * ? ' { } ~ ! #, which inject --from and mail
  // commands refuse; the two rules now agree
  it("list files: a member with shell characters is an error too", async () => {
    const site = await t.site(smtp(2525), []);
    for (const a of SHELLISH) {
      await writeFile(
        path.join(site.listsDir, "dev@example.org.yaml"),
        `address: dev@example.org\nowners: [owner@example.org]\nmembers: [${JSON.stringify(a)}]\n`,
      );
      expect((await runCli(["config", "check", "-C", site.configFile])).code).toBe(1);
    }
  });

  it("inject: such --to is no list (67), such --from is no sender (65), and nothing is queued", async () => {
    const site = await t.site(smtp(2525), [DEV]);
    for (const to of [
      ...OUTSIDE,
      ...SHELLISH,
      "dev@example.org\r\nBcc: v@e.example",
      "dev-bounces+../../x=y@example.org/..",
    ]) {
      const r = await runCli(["inject", "-C", site.configFile, `--to=${to}`], { input: message() });
      expect({ to, code: r.code }).toEqual({ to, code: 67 });
    }
    for (const from of [...OUTSIDE, ...SHELLISH, "a@example.org\r\nBcc: v@e.example"]) {
      const r = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org", `--from=${from}`], {
        input: message(),
      });
      expect({ from, code: r.code }).toEqual({ from, code: 65 });
    }
    // NUL cannot travel in argv: the same code in-process
    await expect(
      injectMessage(site.configFile, message(), { to: "dev\0@example.org" }),
    ).rejects.toMatchObject({ exitCode: 67 });
    await expect(
      injectMessage(site.configFile, message(), { to: "dev@example.org", from: "a\0@example.org" }),
    ).rejects.toMatchObject({ exitCode: 65 });
    // without --to the To header is read: a quoted or path-like local part is no list either
    const r = await runCli(["inject", "-C", site.configFile], {
      input: message({ to: '"../../dev"@example.org, <dev/x@example.org>' }),
    });
    expect(r.code).toBe(67);
    expect(await site.files("incoming")).toEqual([]);
  });

  it("mail commands: joins of such addresses are refused, nothing is written outside the state dir, replies carry no injected header", async () => {
    const sink = await t.sink();
    const site = await t.site(smtp(sink.port), [DEV]);
    // (a blank splits a command's arguments: "join dev@exa mple.org" asks for dev@exa, fairly)
    const refused = OUTSIDE.filter((a) => !a.includes(" "));
    const body = [
      ...refused.map((a) => `join ${a}`),
      "join x@example.org\rBcc: victim@evil.example",
      "leave ../../../etc/passwd",
      "confirm ../../x",
      "confirm abc\rBcc: victim@evil.example",
      "echo hi\rBcc: victim@evil.example",
    ].join("\r\n");
    const req = message({
      from: "asker@example.com",
      to: "dev-request@example.org",
      subject: "commands",
      id: "<cmd-1@x>",
      body,
    });
    expect(
      (await runCli(["inject", "-C", site.configFile, "--to=dev-request@example.org"], { input: req })).code,
    ).toBe(0);
    await once(site, "incoming");
    await once(site, "command");
    const out = await queued(site, "outgoing");
    // the reply, and a confirmation request for "x@example.org" (a bare CR ends a command line)
    expect(out.map((m) => m.meta.recipients.join()).sort()).toEqual(["asker@example.com", "x@example.org"]);
    for (const m of out) {
      const head = headerBlock(m.message);
      expect(head).not.toMatch(/^bcc:/im);
      expect(head).not.toMatch(/victim/i);
      expect(head.match(/^To:/gim)).toHaveLength(1);
    }
    const reply = out.find((m) => m.meta.recipients[0] === "asker@example.com")!;
    const text = reply.message.toString("latin1");
    expect(text.match(/Not done/g)?.length ?? 0).toBeGreaterThanOrEqual(refused.length);
    // only lists/<list>/... under state, nothing named after an address
    const paths = (await walk(site.state)).map((e) => path.relative(site.state, e.path));
    for (const p of paths) expect(p.startsWith("..")).toBe(false);
    expect(paths.filter((p) => /etc|reboot|passwd|victim/.test(p))).toEqual([]);
    await once(site, "outgoing");
    await sink.waitFor(2);
    expect([...sink.deliveries().keys()].some((k) => /victim/.test(k))).toBe(false);
  });
});

describe("no header injection through notices", () => {
  it("a held post whose subject and sender hide CR/LF gets a notice with no injected header", async () => {
    const site = await t.site(smtp(2525), [DEV]);
    const evil = Buffer.from(
      [
        'From: "Evil =?utf-8?Q?x=0D=0ABcc:_victim@evil.example?=" <stranger@example.com>',
        "To: dev@example.org",
        "Subject: =?utf-8?Q?hi=0D=0ABcc:_victim@evil.example=0D=0A=0D=0Abody?=",
        "Message-ID: <evil-1@x>",
        "Return-Path: <stranger@example.com>",
        "",
        "body",
        "",
      ].join("\r\n"),
    );
    expect(
      (await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], { input: evil })).code,
    ).toBe(0);
    await once(site, "incoming");
    const notices = await queued(site, "outgoing");
    expect(notices.length).toBeGreaterThanOrEqual(1);
    for (const n of notices) {
      const head = headerBlock(n.message);
      expect(head).not.toMatch(/^bcc:/im);
      expect(head.split("\r\n").every((l) => !/victim/i.test(l) || /^Subject:|^\s/.test(l))).toBe(true);
      expect(n.meta.recipients.some((r) => /victim/.test(r))).toBe(false);
    }
    expect(await site.files("shunt")).toEqual([]);
  });
});

describe("SMTP passwords", () => {
  it("come from the environment and never show in logs, status, health records or queue metadata", async () => {
    const secret = "s3cret-Pa55word";
    const sink = await t.sink({ auth: { user: "qr", pass: "something-else" }, echoAuthFailure: true });
    const site = await t.site(
      smtp(sink.port, ", allow_plaintext_auth: true, auth: { user: qr, pass_env: QR_TEST_SMTP_PASS }"),
      [DEV],
    );
    const post = message({ from: "alice@example.net", id: "<pw-1@x>" });
    expect(
      (await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], { input: post })).code,
    ).toBe(0);
    const master = spawnCli(["start", "-C", site.configFile], { env: { QR_TEST_SMTP_PASS: secret } });
    await waitFor("a failed login", () => sink.connections > 0, 30_000);
    await waitFor(
      "the failure recorded in backoff",
      async () => (await site.files("backoff")).some((f) => f.endsWith(".qf")),
      30_000,
    );
    const status = await runCli(["status", "--json", "-C", site.configFile]);
    master.child.kill("SIGTERM");
    await master.exited;
    const forms = [
      secret,
      Buffer.from(secret).toString("base64"),
      Buffer.from(`\0qr\0${secret}`).toString("base64"),
    ];
    const texts: [string, string][] = [
      ["master and worker logs", master.stdout() + master.stderr()],
      ["status --json", status.stdout],
    ];
    for (const e of (await walk(site.state)).concat(await walk(site.qfiles)).filter((x) => !x.dir))
      texts.push([e.path, await readFile(e.path, "latin1")]);
    expect(texts.some(([, t]) => /auth|535|login/i.test(t))).toBe(true);
    // the test-only escape hatch is never silent
    expect(master.stdout()).toMatch(/"level":"warn"[^\n]*allow_plaintext_auth/);
    for (const [where, t] of texts)
      for (const f of forms) expect(t.includes(f), `${where} holds the password`).toBe(false);
  });
});

describe("SMTP passwords, missing", () => {
  // a missing pass_env variable was once found only when the first message was sent, and every
  // message was then shunted; the worker now refuses to start (78), naming the variable
  it("a missing pass_env variable stops the outgoing worker (78) and shunts no mail", async () => {
    const site = await t.site(
      smtp(2525, ", allow_plaintext_auth: true, auth: { user: qr, pass_env: QR_TEST_SMTP_PASS }"),
      [DEV],
    );
    const { Switchboard } = await import("../../src/queue/switchboard.js");
    const q = await Switchboard.open({ root: site.qfiles, queue: "outgoing" });
    await q.enqueue(message(), {
      sender: "dev-bounces@example.org",
      recipients: ["bob@example.com"],
      list: "dev@example.org",
    });
    const r = await runOnce(site, "outgoing", {
      env: { QR_TEST_SMTP_PASS: "" },
    });
    expect(r.stderr + r.stdout).toMatch(/QR_TEST_SMTP_PASS/);
    expect(await site.files("shunt")).toEqual([]);
    expect(r.code).toBe(78);
  });
});

describe("bounded input and timeouts", () => {
  it("inject refuses input over 64 MiB, a header line over 4096 bytes and a header over 1 MiB with 65, before parsing", async () => {
    const site = await t.site(smtp(2525), [DEV]);
    const big = Buffer.concat([message({ id: "<big@x>" }), Buffer.alloc(64 * 1024 * 1024 + 1, 0x61)]);
    expect(
      (await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], { input: big })).code,
    ).toBe(65);
    const file = path.join(site.dir, "big.eml");
    await writeFile(file, big);
    expect((await runCli(["inject", "-C", site.configFile, "--to=dev@example.org", file])).code).toBe(65);
    const longLine = Buffer.from(`Subject: ${"x".repeat(5000)}\r\n\r\nbody\r\n`);
    expect(
      (await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], { input: longLine })).code,
    ).toBe(65);
    const longHead = Buffer.from(`${"X-A: 1234567890\r\n".repeat(70_000)}\r\nbody\r\n`);
    expect(
      (await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], { input: longHead })).code,
    ).toBe(65);
    expect(await site.files("incoming")).toEqual([]);
  });

  it("a server that never greets, or never answers the data, costs a timeout: the entry goes to backoff", async () => {
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => sockets.delete(s));
    });
    t.defer(() => new Promise<void>((r) => server.close(() => r())));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const site = await t.site(smtp(port).replace("timeout: 5s", "timeout: 1s"), [DEV]);
    const outgoing = (await import("../../src/queue/switchboard.js")).Switchboard;
    const q = await outgoing.open({ root: site.qfiles, queue: "outgoing" });
    await q.enqueue(message({ id: "<silent@x>" }), {
      sender: "dev-bounces@example.org",
      recipients: ["bob@example.com"],
      list: "dev@example.org",
    });
    const r = await runOnce(site, "outgoing");
    expect(r.code, r.stderr).toBe(0);
    const retry = await queued(site, "backoff");
    expect(retry).toHaveLength(1);
    expect(JSON.stringify(retry[0]!.meta)).toMatch(/timeout|timed out|greeting/i);
    for (const s of sockets) s.destroy();

    // a server that greets, takes the message and never answers it
    const sink = await t.sink({ faults: { dataDelayMs: 60_000 } });
    await writeFile(
      site.configFile,
      (await readFile(site.configFile, "utf8")).replace(`port: ${port}`, `port: ${sink.port}`),
    );
    await q.enqueue(message({ id: "<slow@x>" }), {
      sender: "dev-bounces@example.org",
      recipients: ["bob@example.com"],
      list: "dev@example.org",
    });
    const r2 = await runOnce(site, "outgoing");
    expect(r2.code, r2.stderr).toBe(0);
    expect(await queued(site, "backoff")).toHaveLength(2);
    expect(await site.files("outgoing")).toEqual([]);
  });
});
