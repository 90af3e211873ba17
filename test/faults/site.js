// The fault suite's site: a temp dir with config/qrunner.yaml, lists/, qfiles/ and var/, the config
// writer (valid with given weights, or deliberately invalid), and the posts: ordinary ones, odd but
// valid ones (8-bit bodies, NUL bytes, broken encoded words, dot lines), and malformed input that
// `inject` must refuse with 65.
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync, renameSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const DOMAIN = "faults.test";

/**
 * Three lists: a plain one with an archive, a VERP one (one transaction per member), and a large one
 * split over several transactions by smtp.max_recipients.
 */
export function listSpecs() {
  const members = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}${i}@d${i % 4}.example`);
  return [
    { address: `dev@${DOMAIN}`, members: members("dev", 6), extra: "archive: true" },
    { address: `ops@${DOMAIN}`, members: members("ops", 10), extra: "archive: false\nverp: true" },
    { address: `big@${DOMAIN}`, members: members("big", 25), extra: "archive: false" },
  ];
}

export function makeSite(keepBase) {
  const dir = mkdtempSync(path.join(keepBase ?? os.tmpdir(), "qrunner-faults-"));
  const site = {
    dir,
    configFile: path.join(dir, "config", "qrunner.yaml"),
    listsDir: path.join(dir, "lists"),
    qfiles: path.join(dir, "qfiles"),
    state: path.join(dir, "var"),
    lists: listSpecs(),
  };
  mkdirSync(path.dirname(site.configFile), { recursive: true, mode: 0o750 });
  mkdirSync(site.listsDir, { recursive: true, mode: 0o750 });
  for (const l of site.lists) {
    const body = [
      `address: ${l.address}`,
      `owners: [owner@${DOMAIN}]`,
      `members: [${l.members.join(", ")}]`,
      "nonmembers: accept",
      "max_size: 10MB",
      l.extra,
    ].join("\n");
    writeFileSync(path.join(site.listsDir, `${l.address}.yaml`), body + "\n", { mode: 0o640 });
  }
  return site;
}

/**
 * Entries one worker of each runner holds at once (its `concurrency`), for the runners whose entries
 * become deliveries: incoming (a post, fanned out to outgoing before it is finished), outgoing and
 * backoff (SMTP transactions). The config below is written from these numbers, and the verdict allows
 * this many duplicated messages per kill of such a worker (run.js).
 */
export const IN_FLIGHT = { incoming: 8, outgoing: 8, backoff: 8 };

/**
 * The config text. Generous restart limits and a higher recovery limit are what an operator would
 * set on a machine where something kills workers every few hundred ms; short retry waits so the run
 * drains in seconds rather than hours.
 */
export function configText(hosts, weights, { invalid = false } = {}) {
  const hostLines = hosts.map((h, i) => {
    const w = invalid && i === 1 ? '"three"' : String(weights[i]);
    return `    - { name: ${h.name}, host: 127.0.0.1, port: ${h.port}, weight: ${w}, connect_timeout: 2s, timeout: 10s, pool_size: 4 }`;
  });
  return [
    "qfiles: ../qfiles",
    "state: ../var",
    "lists: ../lists",
    "log: { level: info }",
    "runners:",
    `  incoming: { instances: 2, sleep: 500ms, concurrency: ${IN_FLIGHT.incoming}, max_restarts: 100000 }`,
    `  outgoing: { instances: auto, sleep: 500ms, concurrency: ${IN_FLIGHT.outgoing}, max_restarts: 100000 }`,
    "  bounce: { sleep: 1s, max_restarts: 100000 }",
    "  command: { sleep: 1s, max_restarts: 100000 }",
    "  archive: { sleep: 1s, nice: 0, max_restarts: 100000 }",
    `  backoff: { sleep: 300ms, concurrency: ${IN_FLIGHT.backoff}, max_restarts: 100000 }`,
    "master: { stop_timeout: 15s, stall_timeout: 60s, restart_window: 10m, recovery_limit: 5 }",
    "smtp:",
    "  hosts:",
    ...hostLines,
    "  probe_max: 1s",
    "  max_recipients: 8",
    "backoff: { schedule: [300ms, 1s, 2s], max_age: 1h, jitter: 0.2 }",
    "",
  ].join("\n");
}

/** Replace the config file as an editor saving by rename would. */
export function writeConfig(site, text) {
  const tmp = site.configFile + ".new";
  writeFileSync(tmp, text);
  renameSync(tmp, site.configFile);
}

/** A small seeded PRNG (mulberry32): the same seed gives the same run. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    between: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
  };
}

const CRLF = "\r\n";

/** Odd but valid bodies and subjects: every one must be delivered with its body byte for byte. */
function oddPart(kind, n) {
  switch (kind) {
    case 0:
      return {
        subject: `=?utf-8?B?${Buffer.from(`Grüße ${n}`).toString("base64")}?=`,
        body: Buffer.from(`Grüße aus Köln, ${n}${CRLF}`),
      };
    case 1:
      return {
        subject: `=?utf-8?B?broken=${n}`,
        body: Buffer.concat([Buffer.from("nul:"), Buffer.from([0, 1, 2, 0xff, 0xfe]), Buffer.from(CRLF)]),
      };
    case 2:
      return {
        subject: `latin1 \xe9t\xe9 ${n}`,
        body: Buffer.from(`.${CRLF}..two dots${CRLF}From the start of a line${CRLF}`, "latin1"),
      };
    case 3:
      return {
        subject: `=?iso-8859-1?Q?caf=E9?= =?utf-8?Q?=E2=82=AC?= ${n}`,
        body: Buffer.from("x".repeat(900) + CRLF + "y".repeat(200) + CRLF),
      };
    default:
      return {
        subject: `mime ${n}`,
        body: Buffer.from(
          `--nope${CRLF}Content-Type: text/plain${CRLF}${CRLF}part without its boundary end${CRLF}`,
        ),
        headers: ["MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="elsewhere"'],
      };
  }
}

/** Post number n to `list` from one of its members. Every fifth is odd but valid. */
export function makePost(runId, n, list, rnd) {
  const id = `<f${runId}-${n}@${DOMAIN}>`;
  const from = rnd.pick(list.members);
  const odd = n % 5 === 4 ? oddPart(rnd.int(5), n) : null;
  const body =
    odd?.body ??
    Buffer.from(
      `Post ${n} to ${list.address}.${CRLF}${"Lorem ipsum dolor sit amet. ".repeat(1 + rnd.int(20))}${CRLF}`,
    );
  const head = [
    `From: Member <${from}>`,
    `To: ${list.address}`,
    `Subject: ${odd?.subject ?? `post ${n}`}`,
    `Message-ID: ${id}`,
    "Date: Sat, 28 Nov 2026 12:00:00 +0000",
    ...(odd?.headers ?? []),
  ].join(CRLF);
  const raw = Buffer.concat([Buffer.from(head + CRLF + CRLF, "latin1"), body]);
  return {
    n,
    id,
    list: list.address,
    from,
    raw,
    bodyHash: createHash("sha1").update(body).digest("hex"),
    recipients: list.members,
  };
}

/** Input that is not a message: `inject` must exit 65 for each, and nothing of it may be queued. */
export function malformed(n, rnd) {
  const junk = Buffer.alloc(64 + rnd.int(512));
  for (let i = 0; i < junk.length; i++) junk[i] = rnd.int(256);
  junk[0] = 0; // never a header line
  const cases = [
    Buffer.alloc(0),
    Buffer.from(`${CRLF}body without any header ${n}${CRLF}`),
    junk,
    Buffer.from(`Subject: nul\0in the header ${n}${CRLF}${CRLF}body${CRLF}`),
    Buffer.from(`this is not a header line ${n}${CRLF}Subject: x${CRLF}${CRLF}body${CRLF}`),
    Buffer.from(`X-Long: ${"a".repeat(10_000)}${CRLF}${CRLF}body${CRLF}`),
  ];
  return cases[n % cases.length];
}
