/**
 * Bad input, fuzzed. Thousands of generated malformed messages (seeded generators: no headers,
 * binary junk, NUL bytes, a 1,000-line header, bad MIME boundaries, wrong and mixed encodings, broken
 * RFC 2047 words, addresses with quotes, comments and CR/LF, 50 MB bodies) go through `inject`
 * (in-process for volume, a few hundred real processes) and then through the real runners (incoming,
 * command, bounce, outgoing, archive) under the master: each is refused with 65 (67 when it names no
 * list), or handled, or shunted with its reason; no worker crashes or stalls (same pids, no
 * restarts), and memory stays bounded on huge input. Corrupt and truncated queue files end in `bad`.
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { InjectError, injectMessage } from "../../src/intake/inject.js";
import { encodeEntry } from "../../src/queue/entry.js";
import { type Sink } from "../helpers/smtp-sink.js";
import { logLines, runCli, waitFor, type Site, quickRunners } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";

const COUNT = Number(process.env["QRUNNER_FUZZ_COUNT"] ?? 2000);
const CLI_COUNT = Number(process.env["QRUNNER_FUZZ_CLI"] ?? 200);
const SEED = Number(process.env["QRUNNER_FUZZ_SEED"] ?? 20261128);
const MB50 = 50 * 1024 * 1024;

/** mulberry32: a seeded generator, so that a failure can be replayed with QRUNNER_FUZZ_SEED. */
function prng(seed: number): {
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  bytes(n: number): Buffer;
} {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    int,
    pick: (xs) => xs[int(xs.length)]!,
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => int(256))),
  };
}
type Rnd = ReturnType<typeof prng>;

const CRLF = "\r\n";
const TARGETS = [
  "dev@example.org",
  "held@example.org",
  "dev-request@example.org",
  "dev-bounces@example.org",
  "dev-owner@example.org",
  "dev-join@example.org",
];
const FROMS = [
  "m0@example.net",
  '"Quoted \\"Name\\"" <m1@example.net>',
  "(comment) m0@example.net (another)",
  "m0@example.net\r\n (folded comment)",
  '"odd@quoted"@example.net',
  "<>",
  "no-at-sign",
  "=?utf-8?B?broken?= <m1@example.net>",
  "a@b@c",
  '"unterminated <m0@example.net>',
  "m0@example.net\rBcc: victim@evil.example",
  "Grüße <m1@example.net>",
];

/** One malformed (or merely odd) message; `kind` names the family for the report. */
function generate(rnd: Rnd, n: number): { kind: string; raw: Buffer } {
  const id = `<fz${n}@fuzz.example>`;
  const head = (extra: string[] = [], from = rnd.pick(FROMS)): string =>
    [`From: ${from}`, `To: ${rnd.pick(TARGETS)}`, `Subject: fuzz ${n}`, `Message-ID: ${id}`, ...extra].join(
      CRLF,
    ) +
    CRLF +
    CRLF;
  const kinds: (() => { kind: string; raw: Buffer })[] = [
    () => ({ kind: "no header", raw: Buffer.from(`${CRLF}just a body ${n}${CRLF}`) }),
    () => ({ kind: "binary junk", raw: rnd.bytes(1 + rnd.int(3000)) }),
    () => ({ kind: "NUL in header", raw: Buffer.from(head().replace("Subject: ", "Subject: \0")) }),
    () => ({
      kind: "NUL in body",
      raw: Buffer.concat([Buffer.from(head()), Buffer.from([0, 0, 1, 0]), rnd.bytes(200)]),
    }),
    () => ({
      kind: "1,000-line header",
      raw: Buffer.from(
        head(Array.from({ length: 1000 }, (_, i) => `X-Line-${i}: ${"v".repeat(rnd.int(80))}`)) + "body\r\n",
      ),
    }),
    () => ({
      kind: "bad MIME boundary",
      raw: Buffer.from(
        head([
          "MIME-Version: 1.0",
          rnd.pick([
            'Content-Type: multipart/mixed; boundary="a"',
            "Content-Type: multipart/mixed",
            'Content-Type: multipart/alternative; boundary=""',
            "Content-Type: multipart/report; report-type=delivery-status; boundary=x",
          ]),
        ]) +
          rnd.pick([
            `--b${CRLF}${CRLF}x${CRLF}`,
            `--a${CRLF}Content-Type: multipart/mixed; boundary=a${CRLF}${CRLF}--a${CRLF}`,
            `--x${CRLF}Content-Type: message/delivery-status${CRLF}${CRLF}Final-Recipient: rfc822;${CRLF}Status: 5.9.9.9${CRLF}`,
            "--a--",
          ]),
      ),
    }),
    () => ({
      kind: "wrong encodings",
      raw: Buffer.concat([
        Buffer.from(
          head([
            "MIME-Version: 1.0",
            rnd.pick([
              "Content-Transfer-Encoding: base64",
              "Content-Transfer-Encoding: quoted-printable",
              "Content-Transfer-Encoding: x-uuencode",
            ]),
            `Content-Type: text/plain; charset=${rnd.pick(["utf-8", "x-unknown", "utf-16", "iso-2022-jp", '"'])}`,
          ]),
        ),
        rnd.pick([
          Buffer.from("!!!not base64***=\r\n=ZZ=\r\n"),
          Buffer.from("\xff\xfe\x00h\x00i", "latin1"),
          rnd.bytes(300),
        ]),
      ]),
    }),
    () => ({
      kind: "broken RFC 2047",
      raw: Buffer.from(
        head(
          [],
          `${rnd.pick(["=?utf-8?B?####?=", "=?x?Q?=ZZ=?=", "=?utf-8?Q?unterminated", "=?=?utf-8?B?YQ==?=?=", "=?utf-8*en?B?w6k=?="])} <m0@example.net>`,
        ).replace(
          `Subject: fuzz ${n}`,
          `Subject: =?utf-8?B?${"w6k".repeat(rnd.int(5))}?= =?iso-8859-1?Q?=E9?=`,
        ) + "body\r\n",
        "latin1",
      ),
    }),
    () => ({
      kind: "8-bit header",
      raw: Buffer.from(
        head(["X-Raw: \xe9\xff\xfe"]).replace(`fuzz ${n}`, `f\xfcz\xdf ${n}`) + "body\r\n",
        "latin1",
      ),
    }),
    () => ({
      kind: "long lines",
      raw: Buffer.from(
        head([`X-Long: ${"l".repeat(rnd.pick([990, 4000, 5000]))}`]) + "b".repeat(20_000) + CRLF,
      ),
    }),
    () => ({
      kind: "mbox From_ line",
      raw: Buffer.from(`From m0@example.net Sat Nov 28 12:00:00 2026\n${head()}body\n`),
    }),
    () => ({
      kind: "odd header syntax",
      raw: Buffer.from(
        `${rnd.pick([":no-name", "Name with space: x", "X-Obs : spaced", "\tcontinuation first"])}${CRLF}${head()}body${CRLF}`,
      ),
    }),
    () => ({
      kind: "bare CR and LF",
      raw: Buffer.from(head().replace(/\r\n/g, rnd.pick(["\n", "\r", "\r\r\n"])) + "a\rb\nc\r\n"),
    }),
    () => ({
      kind: "command junk",
      raw: Buffer.from(
        head([], "m0@example.net").replace(/To: .*/, "To: dev-request@example.org") +
          Array.from({ length: 1 + rnd.int(300) }, () =>
            rnd.pick([
              "join",
              "leave x",
              "confirm",
              "confirm ../..",
              "echo \0",
              "help me",
              "subscribe a@b c@d",
              "x".repeat(3000),
            ]),
          ).join(CRLF),
      ),
    }),
  ];
  return rnd.pick(kinds)();
}

function huge(kind: "post" | "command" | "bounce"): { to: string; raw: Buffer } {
  const to = {
    post: "dev@example.org",
    command: "dev-request@example.org",
    bounce: "dev-bounces@example.org",
  }[kind];
  const head = `From: m0@example.net${CRLF}To: ${to}${CRLF}Subject: huge ${kind}${CRLF}Message-ID: <huge-${kind}@fuzz.example>${CRLF}MIME-Version: 1.0${CRLF}Content-Type: multipart/mixed; boundary=zz${CRLF}${CRLF}--zz${CRLF}${CRLF}join m9@example.net${CRLF}--zz${CRLF}Content-Type: application/octet-stream${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}`;
  const line = Buffer.from("QUJDRA".repeat(12) + "==" + CRLF);
  const body = Buffer.alloc(MB50);
  for (let i = 0; i + line.length <= MB50; i += line.length) line.copy(body, i);
  return { to, raw: Buffer.concat([Buffer.from(head), body]) };
}

let site: Site;
let sink: Sink;
const outcomes = new Map<string, number>();
const tally = (k: string): void => void outcomes.set(k, (outcomes.get(k) ?? 0) + 1);

const t = testScope({ until: "all" });

beforeAll(async () => {
  sink = await t.sink();
  site = await t.site(
    quickRunners(", concurrency: 16") +
      `smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port}, pool_size: 8 }], max_recipients: 50 }\n`,
    [
      {
        address: "dev@example.org",
        members: ["m0@example.net", "m1@example.net"],
        extra: "nonmembers: accept\nmax_size: 100MB\nmax_replies_per_hour: 100000",
      },
      { address: "held@example.org", members: ["m0@example.net"], extra: "nonmembers: hold\narchive: false" },
    ],
  );
}, 60_000);

describe.sequential("fuzz", () => {
  it(`${COUNT} generated malformed messages through injectMessage: queued, or refused with 65 (67 without a list)`, async () => {
    const rnd = prng(SEED);
    for (let n = 0; n < COUNT; n++) {
      const { kind, raw } = generate(rnd, n);
      const to = n % 4 === 0 ? undefined : rnd.pick(TARGETS);
      try {
        await injectMessage(site.configFile, raw, { to });
        tally(`queued`);
      } catch (err) {
        if (!(err instanceof InjectError)) throw new Error(`${kind} #${n}: ${String(err)}`);
        expect([65, 67], `${kind} #${n}: ${err.message}`).toContain(err.exitCode);
        if (err.exitCode === 67) expect(to, `${kind} #${n} named a list yet got 67`).toBeUndefined();
        tally(`refused ${err.exitCode}`);
      }
    }
    expect(outcomes.get("queued") ?? 0).toBeGreaterThan(COUNT / 4);
    expect(outcomes.get("refused 65") ?? 0).toBeGreaterThan(COUNT / 20);
  }, 240_000);

  it(`${CLI_COUNT} through real \`qrunner inject\` processes, and 50 MB posts, commands and bounces`, async () => {
    const rnd = prng(SEED + 1);
    const jobs = Array.from({ length: CLI_COUNT }, (_, n) => generate(rnd, COUNT + n));
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let j = next++; j < jobs.length; j = next++) {
        const r = await runCli(["inject", "-C", site.configFile, `--to=${TARGETS[j % TARGETS.length]}`], {
          input: jobs[j]!.raw,
        });
        expect([0, 65], `${jobs[j]!.kind}: ${r.stderr}`).toContain(r.code);
        tally(`cli ${r.code}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    for (const kind of ["post", "command", "bounce"] as const) {
      const h = huge(kind);
      const r = await runCli(["inject", "-C", site.configFile, `--to=${h.to}`], { input: h.raw });
      expect(r.code, r.stderr).toBe(0);
    }
  }, 240_000);

  it("corrupt and truncated queue files are written into every queue before the runners start", async () => {
    const good = Buffer.concat(
      encodeEntry(
        {
          version: 1,
          sender: "m0@example.net",
          recipients: ["m1@example.net"],
          received: Date.now(),
          attempts: 0,
          failures: [],
          recoveries: 0,
        },
        Buffer.from("Subject: x\r\n\r\nbody\r\n"),
      ),
    );
    const meta = (m: string): Buffer => Buffer.from(`QRQ1 ${Buffer.byteLength(m)} 4\n${m}\nbody`);
    const bad = [
      good.subarray(0, good.length - 3),
      good.subarray(0, 10),
      Buffer.concat([good, Buffer.from("pad")]),
      Buffer.from("QRQ2 2 0\n{}\n"),
      Buffer.from("QRQ1 99999999999 5\nx"),
      Buffer.from("x".repeat(200)),
      Buffer.alloc(0),
      meta("{not json"),
      meta("[1,2]"),
      meta('{"version":1}'),
      meta('{"version":2,"sender":"","recipients":[],"attempts":0,"recoveries":0,"failures":[]}'),
      meta('{"version":1,"sender":"","recipients":[1],"attempts":0,"recoveries":0,"failures":[]}'),
      Buffer.concat([Buffer.from(`QRQ1 2 4\n{}`), Buffer.from("Xbody")]),
    ];
    let n = 0;
    for (const q of ["incoming", "outgoing", "command", "bounce", "archive", "backoff"]) {
      await mkdir(path.join(site.qfiles, q), { recursive: true, mode: 0o700 });
      for (const [i, data] of bad.entries()) {
        const sha = (n++).toString(16).padStart(40, "a");
        const ext = i % 3 === 0 ? "wip" : "qf";
        await writeFile(
          path.join(site.qfiles, q, `1700000000.${String(i).padStart(6, "0")}+${sha}.${ext}`),
          data,
          { mode: 0o600 },
        );
      }
    }
    expect(n).toBe(bad.length * 6);
  });

  it("the runners handle everything: no crash or stall, shunted entries carry a reason, bounded memory, corrupt files in bad", async () => {
    const master = t.spawn(["start", "-C", site.configFile], { stopWith: "SIGKILL" });
    await waitFor("all workers ready", () => master.stdout().includes('"msg":"all workers ready"'), 30_000);
    const status = async (): Promise<{
      workers: { runner: string; pid: number | null; restarts: number; state: string }[];
    }> => JSON.parse((await runCli(["status", "--json", "-C", site.configFile])).stdout) as never;
    const before = (await status()).workers;
    const maxRss = new Map<string, number>();
    const sampler = setInterval(() => {
      for (const w of before) {
        if (!w.pid) continue;
        void readFile(`/proc/${w.pid}/status`, "latin1").then(
          (s) => {
            const kb = Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
            maxRss.set(w.runner, Math.max(maxRss.get(w.runner) ?? 0, kb * 1024));
          },
          () => undefined,
        );
      }
    }, 100);
    const pending = async (): Promise<number> => {
      let left = 0;
      for (const q of ["incoming", "outgoing", "command", "bounce", "archive", "backoff"])
        left += (await readdir(path.join(site.qfiles, q)).catch(() => [] as string[])).filter((f) =>
          /\.(qf|wip)$/.test(f),
        ).length;
      return left;
    };
    try {
      await waitFor("every queue to drain", async () => (await pending()) === 0, 420_000);
    } finally {
      clearInterval(sampler);
    }
    const after = (await status()).workers;
    expect(after.map((w) => w.pid)).toEqual(before.map((w) => w.pid));
    expect(after.map((w) => w.restarts)).toEqual(before.map(() => 0));
    const logs = logLines(master.stdout());
    expect(
      logs.filter(
        (l) =>
          l["level"] === "fatal" ||
          l["msg"] === "worker exited unexpectedly" ||
          String(l["msg"]).startsWith("worker stalled"),
      ),
    ).toEqual([]);
    master.child.kill("SIGTERM");
    expect((await master.exited).code).toBe(0);

    // corrupt files: every one in bad, nothing else there; the empty one of each queue (13 per queue)
    // is removed instead (a write a crash cut before its fsync: never acknowledged, nothing to keep)
    const badFiles = await readdir(path.join(site.qfiles, "bad"));
    expect(badFiles.length).toBe(12 * 6);
    expect(
      badFiles.every((f) =>
        /^1700000000\.\d{6}\+a*[0-9a-f]+\.(incoming|outgoing|command|bounce|archive|backoff)\.bad$/.test(f),
      ),
    ).toBe(true);
    // shunted entries: each with its reason
    const shunt = JSON.parse(
      (await runCli(["queue", "list", "shunt", "--json", "-C", site.configFile])).stdout,
    ) as { meta: { shuntReason?: string } | null }[];
    expect(shunt.filter((e) => !e.meta?.shuntReason)).toEqual([]);
    // the 50 MB post reached both members
    expect(sink.deliveries().get("<huge-post@fuzz.example> m0@example.net")).toBe(1);
    // memory: a worker that handled a 50 MB message holds a few copies of it at most
    for (const [runner, rss] of maxRss) expect(rss, `${runner} RSS`).toBeLessThan(12 * MB50);
    const reasons = new Map<string, number>();
    for (const e of shunt) {
      const r = (e.meta?.shuntReason ?? "").replace(/[0-9a-f]{40}|<[^>]*>|"[^"]*"/g, "…").slice(0, 90);
      reasons.set(r, (reasons.get(r) ?? 0) + 1);
    }
    // a handler's own bug (TypeError and the like) is no reason to shunt mail: it would be a crash
    expect(
      [...reasons.keys()].filter((r) =>
        /TypeError|RangeError|ReferenceError|Cannot read|undefined|is not a function/.test(r),
      ),
    ).toEqual([]);
    const report = {
      outcomes: Object.fromEntries(outcomes),
      shunted: shunt.length,
      reasons: Object.fromEntries(reasons),
      bad: badFiles.length,
      deliveries: sink.deliveryCount(),
      maxRssMB: Object.fromEntries([...maxRss].map(([k, v]) => [k, Math.round(v / 2 ** 20)])),
    };
    process.stderr.write(`fuzz: ${JSON.stringify(report)}\n`);
  }, 480_000);
});
