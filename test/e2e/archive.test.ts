/**
 * The list archive end to end (issue 5): every accepted post of a run lands in the list's monthly
 * mboxrd file exactly once, also when the archive runner is SIGKILLed again and again while it works
 * through a few hundred posts. The mbox is read back with Python's standard `mailbox` module when
 * /usr/bin/python3 is there (mboxrd quoting undone on top of it), and always with a small mboxrd reader
 * written here, independent of src/lists/mbox.ts.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Switchboard } from "../../src/queue/switchboard.js";
import { logLines, waitFor } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";
import { fixture, headerValues, listSite, mail, type ListSite } from "./lists-harness.js";

const t = testScope();

const PYTHON = "/usr/bin/python3";

/** One archived message: its From_ line and its bytes with the mboxrd quoting undone. */
interface Archived {
  fromLine: string;
  raw: Buffer;
}

/** Python's mailbox.mbox parses the file; `>From ` quoting is undone line by line (mboxrd). */
function readWithPython(file: string): Archived[] {
  const script = [
    "import base64, json, mailbox, re, sys",
    "mb = mailbox.mbox(sys.argv[1], create=False)",
    "out = []",
    "for key in mb.iterkeys():",
    "    raw = re.sub(rb'(?m)^>(>*From )', rb'\\1', mb.get_bytes(key))",
    "    out.append({'from': mb.get_message(key).get_from(), 'raw': base64.b64encode(raw).decode()})",
    "print(json.dumps(out))",
  ].join("\n");
  const json = execFileSync(PYTHON, ["-c", script, file], { maxBuffer: 64 * 1024 * 1024 }).toString();
  return (JSON.parse(json) as { from: string; raw: string }[]).map((m) => ({
    fromLine: `From ${m.from}`,
    raw: Buffer.from(m.raw, "base64"),
  }));
}

/**
 * An mboxrd reader: a message starts at a `From ` line at the top of the file or after an empty line,
 * ends with the empty line before the next one; `>From `, `>>From `... lose one `>`.
 */
function readMboxrd(data: Buffer): Archived[] {
  const text = data.toString("latin1");
  expect(text.startsWith("From "), "an mbox starts with a From_ line").toBe(true);
  expect(text.endsWith("\n\n"), "an mbox ends with an empty line").toBe(true);
  const out: Archived[] = [];
  // each message ends with its newline and one empty line: cut those, then split between messages
  for (const chunk of text.slice(0, -2).split(/\n\n(?=From )/)) {
    const nl = chunk.indexOf("\n");
    const body = chunk.slice(nl + 1).replace(/^>(>*From )/gm, "$1");
    out.push({ fromLine: chunk.slice(0, nl), raw: Buffer.from(body + "\n", "latin1") });
  }
  return out;
}

/** Both readers must agree; returns what they read. */
async function readArchive(site: ListSite, list: string): Promise<{ file: string; messages: Archived[] }> {
  const dir = path.join(site.site.state, "archives", list);
  const mboxes = (await readdir(dir)).filter((f) => f.endsWith(".mbox"));
  // one month's file: a run does not straddle a month, save at midnight UTC on the 1st
  expect(mboxes.length).toBeGreaterThanOrEqual(1);
  const messages: Archived[] = [];
  const file = path.join(dir, mboxes.sort().at(-1)!);
  for (const m of mboxes.sort()) {
    const f = path.join(dir, m);
    const ours = readMboxrd(await readFile(f));
    if (existsSync(PYTHON)) {
      const py = readWithPython(f);
      expect(py.length).toBe(ours.length);
      py.forEach((p, i) => {
        expect(p.fromLine).toBe(ours[i]!.fromLine);
        expect(p.raw.equals(ours[i]!.raw), `message ${i} of ${m}`).toBe(true);
      });
    }
    messages.push(...ours);
  }
  return { file, messages };
}

/** What mbox readers get back for a message: LF line endings (the archive's form), ending in a newline. */
function asArchived(raw: Buffer): Buffer {
  let t = raw.toString("latin1").replace(/\r\n/g, "\n");
  if (!t.endsWith("\n")) t += "\n";
  return Buffer.from(t, "latin1");
}

const DEV = {
  address: "dev@example.org",
  owners: ["owner@example.org"],
  members: ["alice@example.net", "bob@example.com"],
  extra: 'subject_prefix: "[dev] "\nnonmembers: hold\nmax_size: 8KB',
};

describe("the archive", () => {
  it("holds every accepted post of a run exactly once, in mboxrd form that a standard reader parses", async () => {
    const s = t.own(await listSite([DEV]));
    const accepted = [
      "plain-lf.eml",
      "nul-body.eml",
      "crlf.eml",
      "latin1-8bit.eml",
      "multipart-attachment.eml",
      "subject-2047-b.eml",
    ];
    for (const f of accepted)
      await s.inject(await fixture("messages", f), "dev@example.org", "alice@example.net");
    // a line that is already quoted twice, and one that only looks like a From_ line mid-paragraph
    const quoted = mail({
      from: "bob@example.com",
      to: "dev@example.org",
      subject: "quoting",
      id: "<q@x>",
      body: ">>From the archives\r\nFrom here on\r\n\r\nFrom the top",
    });
    await s.inject(quoted, "dev@example.org");
    // not accepted: a loop, an oversize post, a nonmember's post (held, then approved: archived then)
    await s.inject(
      mail({
        from: "alice@example.net",
        to: "dev@example.org",
        subject: "loop",
        id: "<loop@x>",
        headers: ["X-BeenThere: dev@example.org"],
      }),
      "dev@example.org",
    );
    await s.inject(
      mail({
        from: "alice@example.net",
        to: "dev@example.org",
        subject: "big",
        id: "<big@x>",
        body: "y".repeat(9000),
      }),
      "dev@example.org",
    );
    await s.inject(
      mail({ from: "mallory@example.com", to: "dev@example.org", subject: "held", id: "<held@x>" }),
      "dev@example.org",
    );
    await s.pump();
    const held = JSON.parse((await s.cli(["held", "--json"])).stdout) as { id: string }[];
    expect(held).toHaveLength(1);
    expect((await s.cli(["approve", held[0]!.id])).code).toBe(0);
    await s.pump();

    const { messages } = await readArchive(s, "dev@example.org");
    const ids = messages.map((m) => headerValues(m.raw, "message-id")[0]);
    const want = [
      "<20241128132458.GA1234@example.net>",
      "<nul@example.net>",
      "<CAB1234567890@mail.example.com>",
      "<5f3c.rene@example.fr>",
      "<mp-7781@example.net>",
      "<b64subj@example.de>",
      "<q@x>",
      "<held@x>",
    ];
    expect([...ids].sort()).toEqual([...want].sort());
    // each archived message is the post as the members got it (the list's fields, the prefix), in LF form
    for (const m of messages) {
      const id = headerValues(m.raw, "message-id")[0] ?? "";
      const delivered = s.sink.messages.find((d) => d.messageId === id);
      expect(delivered, id).toBeDefined();
      expect(m.raw.equals(asArchived(delivered!.raw)), `archived copy of ${id}`).toBe(true);
      expect(m.fromLine).toMatch(
        /^From (alice@example\.net|bob@example\.com|mallory@example\.com) [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$/,
      );
    }
    // the quoting survived the round trip, including a line quoted before it was archived
    const q = messages.find((m) => headerValues(m.raw, "message-id")[0] === "<q@x>")!;
    expect(q.raw.toString()).toContain("\n>>From the archives\nFrom here on\n\nFrom the top\n");
    const nul = messages.find((m) => headerValues(m.raw, "message-id")[0] === "<nul@example.net>")!;
    expect(nul.raw.includes(Buffer.from([0, 0, 1, 2, 0xff, 0]))).toBe(true);
  });

  it("archives each of a few hundred posts exactly once although the archive runner is SIGKILLed again and again", async () => {
    const s = t.own(
      await listSite(
        [
          {
            address: "dev@example.org",
            owners: ["owner@example.org"],
            members: [],
            extra: "nonmembers: accept",
          },
        ],
        {
          config: "master: { recovery_limit: 10 }\n",
        },
      ),
    );
    const N = 300;
    const incoming = await Switchboard.open({ root: s.site.qfiles, queue: "incoming" });
    const items = Array.from({ length: N }, (_, i) => ({
      message: mail({
        from: "alice@example.net",
        to: "dev@example.org",
        subject: `post ${i}`,
        id: `<kill-${i}@x>`,
        body: `From the body of post ${i}\r\n` + "z".repeat(2000),
      }),
      meta: {
        sender: "alice@example.net",
        recipients: ["dev@example.org"],
        to: "dev@example.org",
        list: "dev@example.org",
        kind: "post",
      },
    }));
    await incoming.enqueueMany(items);
    incoming.close();
    await s.runOnce("incoming");
    expect(await s.entries("archive")).toHaveLength(N);

    const dir = path.join(s.site.state, "archives", "dev@example.org");
    const indexed = async (): Promise<number> => {
      const idx = (await readdir(dir).catch(() => [])).find((f) => f.endsWith(".idx"));
      return idx ? (await readFile(path.join(dir, idx), "latin1")).split("\n").length - 1 : 0;
    };
    let kills = 0;
    let leftInHand = 0;
    let recovered = 0;
    const recoveredBy = (lines: Record<string, unknown>[]): number =>
      lines
        .filter((l) => l["msg"] === "recovered in-progress entries")
        .reduce((n, l) => n + Number(l["recovered"]), 0);
    // three kills: one that lands while the worker holds the archive lock makes the next start wait
    // for the lock to go stale (10 s), as after any crash
    for (let round = 0; round < 3; round++) {
      const before = await indexed();
      if (before >= N - 40) break;
      const worker = t.spawn(["start", "-C", s.site.configFile, "--runner=archive", "--slice=0/1"], {
        stopWith: "SIGKILL",
      });
      // kill it once it has made progress, so the entry recovered from the last kill is not in hand again
      await waitFor(
        `archive progress in round ${round}`,
        async () => (await indexed()) >= before + 15,
        30_000,
      );
      worker.child.kill("SIGKILL");
      await worker.exited;
      recovered += recoveredBy(logLines(worker.stdout()));
      kills++;
      // the entry it had in hand stays marked in progress on disk, for the next start to recover
      leftInHand += (await s.entries("archive")).filter((f) => f.endsWith(".wip")).length;
    }
    expect(kills).toBe(3);
    recovered += recoveredBy(await s.runOnce("archive"));
    expect(recovered).toBe(leftInHand);

    expect(await s.entries("archive")).toEqual([]);
    expect(await s.entries("shunt")).toEqual([]);
    const { messages } = await readArchive(s, "dev@example.org");
    const ids = messages.map((m) => headerValues(m.raw, "message-id")[0] ?? "");
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(N);
    expect(new Set(ids)).toEqual(new Set(items.map((_, i) => `<kill-${i}@x>`)));
    for (const m of messages) {
      const i = Number(/<kill-(\d+)@x>/.exec(headerValues(m.raw, "message-id")[0] ?? "")?.[1]);
      // the list's fields on top, then the post exactly as queued (in LF form)
      expect(m.raw.subarray(0, 27).toString()).toBe("List-Id: <dev.example.org>\n");
      expect(
        m.raw
          .subarray(m.raw.length - asArchived(items[i]!.message).length)
          .equals(asArchived(items[i]!.message)),
        `post ${i}`,
      ).toBe(true);
    }
  }, 120_000); // up to four 10 s waits for a dead holder's archive lock to go stale, on a loaded machine

  it.runIf(process.getuid?.() === 0)(
    "keeps the entries queued while the archive cannot be written (disk full), and archives them once it can",
    async () => {
      const s = t.own(
        await listSite([
          {
            address: "dev@example.org",
            owners: ["owner@example.org"],
            members: [],
            extra: "nonmembers: accept",
          },
        ]),
      );
      for (let i = 0; i < 3; i++)
        await s.inject(
          mail({
            from: "alice@example.net",
            to: "dev@example.org",
            subject: `full ${i}`,
            id: `<full-${i}@x>`,
            body: "w".repeat(3000),
          }),
          "dev@example.org",
        );
      await s.runOnce("incoming");
      const archives = path.join(s.site.state, "archives");
      await mkdir(archives, { recursive: true });
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", archives]);
      try {
        // fill the filesystem: the archive's directory and files can be created, but no byte written
        const filler = path.join(archives, "filler");
        await writeFile(filler, Buffer.alloc(64 * 1024)).catch(() => undefined);
        const full = await s.runOnce("archive");
        expect(
          full.some(
            (l) => l.msg === "cannot pass entry on; will retry" && /ENOSPC|no space/i.test(JSON.stringify(l)),
          ),
        ).toBe(true);
        expect(await s.entries("shunt")).toEqual([]);
        expect(await s.entries("archive")).toHaveLength(3);

        await rm(filler);
        await sleep(1100); // runners.archive.sleep: the entries are due again after it
        await s.pump();
        expect(await s.entries("archive")).toEqual([]);
        const { messages } = await readArchive(s, "dev@example.org");
        expect(messages.map((m) => headerValues(m.raw, "message-id")[0]).sort()).toEqual([
          "<full-0@x>",
          "<full-1@x>",
          "<full-2@x>",
        ]);
      } finally {
        execFileSync("umount", [archives]);
      }
    },
  );
});
