/**
 * A list site for the end-to-end tests of issues 5 and 6: a qrunner site in a temp dir whose SMTP host
 * is a recording sink on loopback, the real CLI to inject and to moderate, and `pump()`, which runs the
 * real runner processes (`qrunner start --runner=NAME --slice=0/1 --once`) until every queue of the
 * post path is empty. Runs are deterministic: a test asserts on what the sink holds after a pump, and
 * "nothing was sent" means nothing was sent, not "nothing yet".
 */
import { readFile, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import type { ListState } from "../../src/lists/state-shape.js";
import { decodeEntry } from "../../src/queue/entry.js";
import type { EntryMeta } from "../../src/queue/types.js";
import { startSink, type Sink, type SinkMessage } from "../helpers/smtp-sink.js";
import { logLines, makeSite, runCli, spawnCli, waitFor } from "../helpers/site.js";
import type { ListSpec, Running, Site } from "../helpers/site.js";

export const FIXTURES = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "fixtures");

export function fixture(kind: "messages" | "bounces", name: string): Promise<Buffer> {
  return readFile(path.join(FIXTURES, kind, name));
}

/**
 * The runners of the post path, stage by stage in the order a message travels (the runners of one
 * stage feed only later stages, so they run side by side); backoff is not pumped.
 */
const STAGES = [["incoming"], ["command", "bounce", "archive"], ["outgoing"]] as const;
const PIPELINE = STAGES.flat();
export type PumpedRunner = (typeof PIPELINE)[number];

export interface LogLine {
  [key: string]: unknown;
  runner?: string;
  msg?: string;
}

export interface ListSite {
  site: Site;
  sink: Sink;
  /** every JSON log line of every runner run so far */
  logs: LogLine[];
  /** `qrunner inject --to=TO [--from=FROM]`; fails the test unless it exits 0 */
  inject(raw: Buffer | string, to: string, from?: string): Promise<string>;
  /** `qrunner ARGS -C config` */
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** run each runner with --once until the post-path queues are empty (at most `rounds` rounds) */
  pump(rounds?: number): Promise<void>;
  /** one `--once` run of one runner; returns its log lines */
  runOnce(runner: PumpedRunner): Promise<LogLine[]>;
  /** messages the sink accepted for `rcpt` */
  to(rcpt: string): SinkMessage[];
  /** the list's state file (`<state>/lists/<list>/state.json`) */
  stateFile(list: string): string;
  writeState(list: string, state: unknown): Promise<void>;
  readState(list: string): Promise<ListState>;
  /** entry files (queued or in progress) of a queue */
  entries(queue: string): Promise<string[]>;
  /** the entries of a queue, read without taking them */
  peek(queue: string): Promise<{ meta: EntryMeta; message: Buffer }[]>;
  /**
   * `qrunner start` (the master and its workers) on the site, once every worker is ready; the LMTP
   * port when the config listens for LMTP. `close()` stops it (SIGTERM) before removing the site.
   */
  startMaster(): Promise<{ master: Running; lmtpPort: number | undefined }>;
  close(): Promise<void>;
}

/**
 * A site whose one SMTP host is a fresh sink. `runners`: extra YAML lines under `runners:`; `smtp`:
 * extra keys of the `smtp:` map; `config`: extra top-level YAML; `files`: more files in the lists folder.
 */
export async function listSite(
  lists: ListSpec[],
  opts: { runners?: string; config?: string; smtp?: string; files?: Record<string, string> } = {},
): Promise<ListSite> {
  const sink = await startSink();
  const config =
    `smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port}, timeout: 30s }]${opts.smtp !== undefined ? `, ${opts.smtp}` : ""} }\n` +
    `runners:\n  outgoing: { instances: 1 }\n  archive: { nice: 0, sleep: 1s }\n${opts.runners ?? ""}` +
    (opts.config ?? "");
  const site = await makeSite(config, lists);
  for (const [name, text] of Object.entries(opts.files ?? {}))
    await writeFile(path.join(site.listsDir, name), text);
  const logs: LogLine[] = [];
  const masters: Running[] = [];
  const cli = (args: string[]): ReturnType<typeof runCli> => runCli([...args, "-C", site.configFile]);

  const entries = async (queue: string): Promise<string[]> =>
    (await site.files(queue)).filter((f) => f.endsWith(".qf") || f.endsWith(".wip"));

  const runOnce = async (runner: PumpedRunner): Promise<LogLine[]> => {
    const r = await cli(["start", `--runner=${runner}`, "--slice=0/1", "--once"]);
    if (r.code !== 0)
      throw new Error(`qrunner start --runner=${runner} --once exited ${r.code}: ${r.stderr}\n${r.stdout}`);
    const lines = logLines(r.stdout) as LogLine[];
    logs.push(...lines);
    return lines;
  };

  const stateFile = (list: string): string =>
    path.join(site.state, "lists", list.toLowerCase(), "state.json");

  return {
    site,
    sink,
    logs,
    async inject(raw, to, from) {
      const r = await runCli(
        ["inject", "-C", site.configFile, `--to=${to}`, ...(from !== undefined ? [`--from=${from}`] : [])],
        {
          input: raw,
        },
      );
      if (r.code !== 0) throw new Error(`inject exited ${r.code}: ${r.stderr}`);
      const id = /queued ([0-9a-f]{40})/.exec(r.stdout)?.[1];
      if (!id) throw new Error(`inject printed no id: ${r.stdout}`);
      return id;
    },
    cli,
    runOnce,
    async pump(rounds = 6) {
      for (let i = 0; i < rounds; i++) {
        let ran = false;
        for (const stage of STAGES) {
          const due: PumpedRunner[] = [];
          for (const runner of stage) if ((await entries(runner)).length > 0) due.push(runner);
          await Promise.all(due.map((r) => runOnce(r)));
          ran ||= due.length > 0;
        }
        if (!ran) return;
      }
      const left: string[] = [];
      for (const q of PIPELINE) left.push(`${q}: ${(await entries(q)).length}`);
      throw new Error(`queues not empty after ${rounds} rounds (${left.join(", ")})`);
    },
    to: (rcpt) => sink.messages.filter((m) => m.to.includes(rcpt)),
    stateFile,
    async writeState(list, state) {
      await mkdir(path.dirname(stateFile(list)), { recursive: true, mode: 0o700 });
      await writeFile(stateFile(list), JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
    },
    async readState(list) {
      return JSON.parse(await readFile(stateFile(list), "utf8")) as ListState;
    },
    entries,
    async peek(queue) {
      const out: { meta: EntryMeta; message: Buffer }[] = [];
      for (const name of (await entries(queue)).sort()) {
        const file = path.join(site.qfiles, queue, name);
        out.push(decodeEntry(file, await readFile(file)));
      }
      return out;
    },
    async startMaster() {
      const running = spawnCli(["start", "-C", site.configFile]);
      masters.push(running);
      let port: number | undefined;
      await waitFor("all workers ready", () => {
        const lines = logLines(running.stdout());
        for (const l of lines)
          if (l["msg"] === "LMTP listening") port = Number(String(l["address"]).split(":").pop());
        return lines.some((l) => l["msg"] === "all workers ready");
      });
      return { master: running, lmtpPort: port };
    },
    async close() {
      for (const m of masters.splice(0)) {
        if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill("SIGTERM");
        await m.exited;
      }
      await sink.close();
      await site.cleanup();
    },
  };
}

/** The header block of a delivered message, as text (latin1), and its body bytes. */
export function splitRaw(raw: Buffer): { header: string; body: Buffer } {
  const crlf = raw.indexOf("\r\n\r\n");
  const lf = raw.indexOf("\n\n");
  const useCrlf = crlf !== -1 && (lf === -1 || crlf < lf);
  const at = useCrlf ? crlf : lf;
  if (at === -1) return { header: raw.toString("latin1"), body: Buffer.alloc(0) };
  return { header: raw.toString("latin1", 0, at), body: raw.subarray(at + (useCrlf ? 4 : 2)) };
}

/** Every value of a header field in a raw message (unfolded). */
export function headerValues(raw: Buffer, name: string): string[] {
  const { header } = splitRaw(raw);
  const unfolded = header.replace(/\r?\n[ \t]+/g, " ");
  const out: string[] = [];
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name.toLowerCase())
      out.push(line.slice(colon + 1).trim());
  }
  return out;
}

/** The text of a notice qrunner wrote (7bit or quoted-printable). */
export function noticeText(raw: Buffer): string {
  const { header, body } = splitRaw(raw);
  const text = body.toString("latin1");
  if (!/content-transfer-encoding:\s*quoted-printable/i.test(header)) return text;
  const bytes = text
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, "latin1").toString("utf8");
}

/** A plain message from `from`; CRLF endings, like mail off the wire. */
export function mail(opts: {
  from: string;
  to: string;
  subject: string;
  body?: string;
  id?: string;
  headers?: string[];
}): Buffer {
  const id = opts.id ?? `<${Math.random().toString(36).slice(2)}@test.example>`;
  return Buffer.from(
    [
      `From: ${opts.from}`,
      `To: ${opts.to}`,
      `Subject: ${opts.subject}`,
      `Message-ID: ${id}`,
      "Date: Sat, 28 Nov 2026 12:00:00 +0000",
      ...(opts.headers ?? []),
      "",
      opts.body ?? "Hello, list.",
      "",
    ].join("\r\n"),
  );
}
