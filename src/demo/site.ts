/**
 * The demo's qrunner site: config/qrunner.yaml (two weighted primaries and a fallback on the demo's
 * receivers, short probe and retry times), one list with its members file, and the queue, state and
 * log paths under the same directory.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

export const LIST = "demo@demo.example";
export const OWNER = "owner@demo.example";

export interface DemoHost {
  name: string;
  port: number;
  /** primaries only */
  weight?: number;
}

export interface DemoSite {
  dir: string;
  configFile: string;
  qfiles: string;
  logFile: string;
  list: string;
  members: string[];
}

/** `count` member addresses over a few domains, the way a real list mixes providers. */
export function memberAddresses(count: number): string[] {
  const domains = ["example.net", "example.com", "mail.example.org", "example.edu", "post.example"];
  return Array.from(
    { length: count },
    (_, j) => `member${j}@${domains[j % domains.length] ?? "example.net"}`,
  );
}

export async function writeDemoSite(
  dir: string,
  opts: { primaries: DemoHost[]; fallback: DemoHost; members: number },
): Promise<DemoSite> {
  const configFile = path.join(dir, "config", "qrunner.yaml");
  const listsDir = path.join(dir, "lists");
  const logFile = path.join(dir, "var", "qrunner.log");
  await mkdir(path.dirname(configFile), { recursive: true, mode: 0o750 });
  await mkdir(listsDir, { recursive: true, mode: 0o750 });
  await mkdir(path.dirname(logFile), { recursive: true, mode: 0o750 });
  const host = (h: DemoHost): string =>
    `    - { name: ${h.name}, host: 127.0.0.1, port: ${h.port}${h.weight !== undefined ? `, weight: ${h.weight}` : ""}, pool_size: 16, connect_timeout: 2s, timeout: 10s }`;
  const config = [
    "# written by `npm run demo`: two weighted primaries and a fallback, all loopback receivers of the demo",
    "qfiles: ../qfiles",
    "state: ../var",
    "lists: ../lists",
    `log: { level: info, file: ${JSON.stringify(logFile)} }`,
    "runners:",
    "  incoming: { instances: 2, sleep: 500ms }",
    "  # one outgoing worker per primary, its slice of the hash space sized by the host's weight",
    "  outgoing: { instances: auto, concurrency: 32, sleep: 500ms }",
    "  backoff: { concurrency: 32, sleep: 500ms }",
    "smtp:",
    "  hosts:",
    ...opts.primaries.map(host),
    "  fallback:",
    host(opts.fallback),
    "  probe_max: 2s",
    "  max_recipients: 100",
    "backoff: { schedule: [2s, 5s, 10s], max_age: 1h }",
    "master: { stop_timeout: 20s }",
    "",
  ].join("\n");
  await writeFile(configFile, config, { mode: 0o640 });
  const members = memberAddresses(opts.members);
  await writeFile(path.join(listsDir, "demo.members"), members.join("\n") + "\n", { mode: 0o640 });
  await writeFile(
    path.join(listsDir, `${LIST}.yaml`),
    [
      `address: ${LIST}`,
      `owners: [${OWNER}]`,
      "members_file: demo.members",
      'subject_prefix: "[demo] "',
      "nonmembers: accept",
      "archive: false",
      "",
    ].join("\n"),
    { mode: 0o640 },
  );
  return { dir, configFile, qfiles: path.join(dir, "qfiles"), logFile, list: LIST, members };
}

/** Post number i, as a poster's mail client would write it. */
export function post(i: number): { messageId: string; raw: Buffer } {
  const messageId = `<demo-${i}@poster.example>`;
  const raw = Buffer.from(
    [
      `From: Poster ${i % 17} <poster${i % 17}@poster.example>`,
      `To: ${LIST}`,
      `Subject: demo post ${i}`,
      `Message-ID: ${messageId}`,
      `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
      "",
      `This is post ${i} of the qrunner demo.`,
      "",
    ].join("\r\n"),
  );
  return { messageId, raw };
}
