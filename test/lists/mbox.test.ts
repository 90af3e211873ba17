import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  ArchiveError,
  appendToArchive,
  archiveMonth,
  asctime,
  mboxrdEntry,
  splitMboxrd,
} from "../../src/lists/mbox.js";
import { fixtures } from "../fixtures/messages/list.js";
import { requireBuild } from "../helpers/site.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PYTHON = "/usr/bin/python3";
const WHEN = new Date(Date.UTC(2024, 10, 28, 13, 5, 9));
const MONTH = "2024-11";

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qrunner-mbox-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

let n = 0;
async function freshDir(): Promise<string> {
  return path.join(tmp, `archive-${++n}`, "dev@example.org");
}

/** The message as an mbox keeps it: CRLF as LF. */
function lfOnly(raw: Buffer): Buffer {
  const s = raw.toString("latin1").replace(/\r\n/g, "\n");
  return Buffer.from(s.endsWith("\n") ? s : s + "\n", "latin1");
}

/** An mboxrd reader written here, independent of splitMboxrd. */
function readMboxrd(data: Buffer): { from: string; body: Buffer }[] {
  const lines = data.toString("latin1").split("\n");
  const out: { from: string; lines: string[] }[] = [];
  for (const line of lines) {
    if (line.startsWith("From ")) out.push({ from: line, lines: [] });
    else out.at(-1)?.lines.push(/^>+From /.test(line) ? line.slice(1) : line);
  }
  return out.map((e) => {
    // each entry ends "\n" + the empty separator line; split("\n") leaves ["", ""] there (or [""] at EOF)
    const ls = e.lines.slice();
    while (ls.length > 0 && ls.at(-1) === "") ls.pop();
    return { from: e.from, body: Buffer.from(ls.join("\n") + "\n", "latin1") };
  });
}

async function indexLines(dir: string): Promise<string[]> {
  return (await fsp.readFile(path.join(dir, `${MONTH}.idx`), "latin1")).split("\n").filter((l) => l !== "");
}

describe("mboxrd entries", () => {
  it("quotes From lines, turns CRLF into LF and ends with an empty line", () => {
    const raw = Buffer.from(
      "Subject: x\r\n\r\nFrom here\r\n>From there\r\n>>From far\r\nFromage\r\nlone\rFrom cr\r\n",
      "latin1",
    );
    expect(mboxrdEntry(raw, "alice@example.net", WHEN).toString("latin1")).toBe(
      "From alice@example.net Thu Nov 28 13:05:09 2024\n" +
        "Subject: x\n\n>From here\n>>From there\n>>>From far\nFromage\nlone\rFrom cr\n\n",
    );
    expect(mboxrdEntry(Buffer.from("A: b\n\nno newline"), "", WHEN).toString()).toBe(
      "From MAILER-DAEMON Thu Nov 28 13:05:09 2024\nA: b\n\nno newline\n\n",
    );
    expect(mboxrdEntry(Buffer.from("A: b\n\n"), "we ird\tsender", WHEN).toString()).toMatch(
      /^From we-ird-sender /,
    );
  });

  it("formats asctime and months in UTC", () => {
    expect(asctime(new Date(Date.UTC(2025, 0, 5, 1, 2, 3)))).toBe("Sun Jan  5 01:02:03 2025");
    expect(archiveMonth(new Date(Date.UTC(2024, 11, 31, 23, 59, 59)))).toBe("2024-12");
    expect(archiveMonth(new Date(Date.UTC(2025, 0, 1)))).toBe("2025-01");
  });
});

describe("appendToArchive", () => {
  it("archives every fixture readably, with 0600 files in a 0700 directory", async () => {
    const dir = await freshDir();
    const all = fixtures();
    for (const [i, f] of all.entries()) {
      expect(await appendToArchive(dir, `e${i}`, f.raw, "alice@example.net", WHEN)).toBe("appended");
    }
    const file = path.join(dir, `${MONTH}.mbox`);
    expect((await fsp.stat(dir)).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(path.join(dir, `${MONTH}.idx`))).mode & 0o777).toBe(0o600);

    const data = await fsp.readFile(file);
    const entries = readMboxrd(data);
    expect(entries.map((e) => e.from)).toEqual(
      all.map(() => "From alice@example.net Thu Nov 28 13:05:09 2024"),
    );
    entries.forEach((e, i) =>
      expect(e.body.equals(lfOnly(all[i]?.raw ?? Buffer.alloc(0))), all[i]?.name).toBe(true),
    );
    const mine = splitMboxrd(data);
    mine.forEach((e, i) =>
      expect(e.message.equals(lfOnly(all[i]?.raw ?? Buffer.alloc(0))), all[i]?.name).toBe(true),
    );

    // the index ends each entry where the next From_ line starts
    const ends = (await indexLines(dir)).map((l) => Number(l.split(" ")[1]));
    expect(ends.at(-1)).toBe(data.length);
    for (const end of ends.slice(0, -1)) expect(data.toString("latin1", end, end + 5)).toBe("From ");
  });

  it.skipIf(!existsSync(PYTHON))("reads back with Python's mailbox module", async () => {
    const dir = await freshDir();
    const all = fixtures();
    for (const [i, f] of all.entries()) await appendToArchive(dir, `p${i}`, f.raw, "bob@example.com", WHEN);
    const script = [
      "import mailbox, sys, json, base64",
      "mb = mailbox.mbox(sys.argv[1], create=False)",
      "out = []",
      "for key in mb.keys():",
      "    m = mb.get_message(key)",
      "    out.append({'from': m.get_from(), 'subject': m['subject'], 'mid': m['message-id'], 'raw': base64.b64encode(mb.get_bytes(key)).decode()})",
      "print(json.dumps(out))",
    ].join("\n");
    const r = spawnSync(PYTHON, ["-c", script, path.join(dir, `${MONTH}.mbox`)], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as {
      from: string;
      subject: string | null;
      mid: string | null;
      raw: string;
    }[];
    expect(got.length).toBe(all.length);
    got.forEach((g, i) => {
      const raw = all[i]?.raw ?? Buffer.alloc(0);
      expect(g.from).toBe("bob@example.com Thu Nov 28 13:05:09 2024");
      // Python's mbox reader leaves >From quoting in place; undoing mboxrd quoting gives the message
      const body = Buffer.from(g.raw, "base64")
        .toString("latin1")
        .replace(/(^|\n)>(>*From )/g, "$1$2");
      expect(Buffer.from(body, "latin1").equals(lfOnly(raw)), all[i]?.name).toBe(true);
    });
    expect(got.find((g) => g.mid === "<20241128132458.GA1234@example.net>")?.subject).toBe(
      "Release plan for 2.0",
    );
  });

  it("appends an entry id once", async () => {
    const dir = await freshDir();
    const raw = Buffer.from("Subject: once\n\nbody\n");
    expect(await appendToArchive(dir, "abc", raw, "a@example.net", WHEN)).toBe("appended");
    const before = await fsp.readFile(path.join(dir, `${MONTH}.mbox`));
    expect(await appendToArchive(dir, "abc", raw, "a@example.net", WHEN)).toBe("already");
    expect(await appendToArchive(dir, "ab", raw, "a@example.net", WHEN)).toBe("appended"); // a prefix is another id
    expect(
      (await fsp.readFile(path.join(dir, `${MONTH}.mbox`))).subarray(0, before.length).equals(before),
    ).toBe(true);
    expect(await indexLines(dir)).toHaveLength(2);
  });

  it("drops a torn append (partial data, no index line) before the next one", async () => {
    const dir = await freshDir();
    const mbox = path.join(dir, `${MONTH}.mbox`);
    await appendToArchive(dir, "a", Buffer.from("Subject: A\n\nfirst\n"), "x@example.net", WHEN);
    await fsp.appendFile(mbox, "From x@example.net Thu Nov 28 13:05:09 2024\nSubject: torn\n\nhalf a bo");
    await appendToArchive(dir, "b", Buffer.from("Subject: B\n\nsecond\n"), "x@example.net", WHEN);
    const entries = readMboxrd(await fsp.readFile(mbox));
    expect(entries.map((e) => e.body.toString())).toEqual([
      "Subject: A\n\nfirst\n",
      "Subject: B\n\nsecond\n",
    ]);
  });

  it("re-appends an entry whose data was written but not indexed", async () => {
    const dir = await freshDir();
    const mbox = path.join(dir, `${MONTH}.mbox`);
    await appendToArchive(dir, "a", Buffer.from("Subject: A\n\nfirst\n"), "x@example.net", WHEN);
    const c = Buffer.from("Subject: C\n\nthird\n");
    await fsp.appendFile(mbox, mboxrdEntry(c, "x@example.net", WHEN)); // died before the index line
    expect(await appendToArchive(dir, "c", c, "x@example.net", WHEN)).toBe("appended");
    expect(await appendToArchive(dir, "c", c, "x@example.net", WHEN)).toBe("already");
    const entries = readMboxrd(await fsp.readFile(mbox));
    expect(entries.map((e) => e.body.toString())).toEqual(["Subject: A\n\nfirst\n", "Subject: C\n\nthird\n"]);
  });

  it("ignores a torn index line", async () => {
    const dir = await freshDir();
    const mbox = path.join(dir, `${MONTH}.mbox`);
    const c = Buffer.from("Subject: C\n\nthird\n");
    await appendToArchive(dir, "a", Buffer.from("Subject: A\n\nfirst\n"), "x@example.net", WHEN);
    const size = (await fsp.stat(mbox)).size;
    await fsp.appendFile(mbox, mboxrdEntry(c, "x@example.net", WHEN));
    await fsp.appendFile(path.join(dir, `${MONTH}.idx`), `c ${size + 1}`); // no newline: the write was cut
    expect(await appendToArchive(dir, "c", c, "x@example.net", WHEN)).toBe("appended");
    expect(await indexLines(dir)).toEqual([`a ${size}`, `c ${(await fsp.stat(mbox)).size}`]);
    expect(readMboxrd(await fsp.readFile(mbox))).toHaveLength(2);
  });

  it("refuses an mbox shorter than its index, and bad entry ids", async () => {
    const dir = await freshDir();
    await appendToArchive(dir, "a", Buffer.from("Subject: A\n\nfirst\n"), "x@example.net", WHEN);
    await fsp.truncate(path.join(dir, `${MONTH}.mbox`), 10);
    await expect(
      appendToArchive(dir, "b", Buffer.from("Subject: B\n\n"), "x@example.net", WHEN),
    ).rejects.toThrow(/shorter .* than its index/);
    await expect(appendToArchive(dir, "a b", Buffer.from("S: x\n\n"), "", WHEN)).rejects.toBeInstanceOf(
      ArchiveError,
    );
    await expect(appendToArchive(dir, "../x", Buffer.from("S: x\n\n"), "", WHEN)).rejects.toBeInstanceOf(
      ArchiveError,
    );
  });

  it("takes over a lock left by a dead process once it is stale", async () => {
    const dir = await freshDir();
    await appendToArchive(dir, "a", Buffer.from("Subject: A\n\n"), "x@example.net", WHEN);
    // what a process killed while holding the lock leaves behind: nobody refreshes it any more
    await fsp.mkdir(path.join(dir, `${MONTH}.mbox.lock`));
    expect(
      await appendToArchive(dir, "b", Buffer.from("Subject: B\n\n"), "x@example.net", WHEN, {
        staleMs: 2000,
      }),
    ).toBe("appended");
    expect(existsSync(path.join(dir, `${MONTH}.mbox.lock`))).toBe(false);
    expect(await indexLines(dir)).toHaveLength(2);
  });

  it("files a message under the month it was received (UTC)", async () => {
    const dir = await freshDir();
    await appendToArchive(dir, "dec", Buffer.from("S: 1\n\n"), "", new Date(Date.UTC(2024, 11, 31, 23, 59)));
    await appendToArchive(dir, "jan", Buffer.from("S: 2\n\n"), "", new Date(Date.UTC(2025, 0, 1, 0, 1)));
    expect((await fsp.readdir(dir)).sort()).toEqual([
      "2024-12.idx",
      "2024-12.mbox",
      "2025-01.idx",
      "2025-01.mbox",
    ]);
  });
});

describe("appendToArchive across processes", () => {
  let child: string;

  /** A child process runs the built module (dist/, made by `npm test`'s build) as the runner does. */
  beforeAll(async () => {
    requireBuild();
    const out = path.join(tmp, "build");
    await fsp.mkdir(out, { recursive: true });
    child = path.join(out, "child.js");
    await fsp.writeFile(
      child,
      [
        `import { appendToArchive } from ${JSON.stringify(pathToFileURL(path.join(REPO, "dist/lists/mbox.js")).href)};`,
        "const [dir, ...ids] = process.argv.slice(2);",
        "for (const id of ids) {",
        "  const raw = Buffer.from(`Subject: ${id}\\n\\nbody of ${id}\\nFrom the middle\\n`);",
        '  const r = await appendToArchive(dir, id, raw, "p@example.net", new Date(Date.UTC(2024, 10, 28)), { staleMs: 2000 });',
        "  process.stdout.write(`${id} ${r}\\n`);",
        "}",
      ].join("\n"),
    );
  });

  function run(dir: string, ids: string[]): Promise<{ code: number | null; out: string; err: string }> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [child, dir, ...ids], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      p.stdout.on("data", (d: Buffer) => (out += d.toString()));
      p.stderr.on("data", (d: Buffer) => (err += d.toString()));
      p.on("error", reject);
      p.on("close", (code) => resolve({ code, out, err }));
    });
  }

  async function assertExactlyOnce(dir: string, ids: string[]): Promise<void> {
    const data = await fsp.readFile(path.join(dir, `${MONTH}.mbox`));
    const entries = readMboxrd(data);
    const subjects = entries.map((e) => /^Subject: (.*)$/m.exec(e.body.toString())?.[1]);
    expect(subjects.slice().sort()).toEqual(ids.slice().sort());
    for (const e of entries)
      expect(e.body.toString()).toMatch(/^Subject: (\S+)\n\nbody of \1\nFrom the middle\n$/);
    const idx = await indexLines(dir);
    expect(idx.map((l) => l.split(" ")[0]).sort()).toEqual(ids.slice().sort());
    expect(Number(idx.at(-1)?.split(" ")[1])).toBe(data.length);
  }

  it("two processes appending the same and different ids at once: each id exactly once", async () => {
    const dir = await freshDir();
    const shared = Array.from({ length: 30 }, (_, i) => `s${i}`);
    const a = [...shared, ...Array.from({ length: 10 }, (_, i) => `a${i}`)];
    const b = [...shared.slice().reverse(), ...Array.from({ length: 10 }, (_, i) => `b${i}`)];
    const [ra, rb] = await Promise.all([run(dir, a), run(dir, b)]);
    expect(ra.code, ra.err).toBe(0);
    expect(rb.code, rb.err).toBe(0);
    const appended = (ra.out + rb.out).split("\n").filter((l) => l.endsWith(" appended")).length;
    expect(appended).toBe(50);
    await assertExactlyOnce(dir, [...new Set([...a, ...b])]);
  });

  it("a process killed mid-run leaves nothing that breaks exactly-once", async () => {
    const dir = await freshDir();
    const ids = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await new Promise<void>((resolve, reject) => {
      const p = spawn(process.execPath, [child, dir, ...ids], { stdio: ["ignore", "pipe", "inherit"] });
      p.stdout.once("data", () => p.kill("SIGKILL")); // somewhere after its first append
      p.on("error", reject);
      p.on("close", () => resolve());
    });
    const r = await run(dir, ids); // takes over the dead process's lock once stale
    expect(r.code, r.err).toBe(0);
    await assertExactlyOnce(dir, ids);
  });
});
