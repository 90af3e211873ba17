/**
 * The list archive: one mboxrd file per month, `<dir>/<YYYY-MM>.mbox` (UTC), appended exactly once
 * per queue entry even when a process dies mid-append.
 *
 * Beside each mbox, `<YYYY-MM>.idx` holds one `<entry id> <end offset>` line per archived message,
 * fsynced after the mbox data. Under the lock we (1) drop a torn index line, (2) answer "already"
 * when the id is indexed, (3) truncate the mbox back to the last indexed end, which removes any
 * append that died before its index line, (4) write and fsync the entry, (5) append and fsync the
 * index line. A crash anywhere leaves either no trace of the entry or a complete, indexed one.
 * The lock (proper-lockfile, `<mbox>.lock`) serialises processes; one that dies holding it is
 * taken over once the lock is stale.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import lockfile from "proper-lockfile";
import { fsyncDir } from "../util/dirsync.js";
import { QrunnerError } from "../util/errors.js";

/** The archive could not be written now (lock busy, disk, permissions): retry the entry later. */
export class ArchiveError extends QrunnerError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super("EARCHIVE", `${file}: ${message}`, options);
    this.file = file;
  }
}

export interface ArchiveOptions {
  /** a lock not refreshed for this long belongs to a dead process and is taken over (min 2000) */
  staleMs?: number;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const ENTRY_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:+=-]{0,199}$/;

/** `YYYY-MM` of a date, in UTC: the archive file a message received then goes to. */
export function archiveMonth(d: Date): string {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** C asctime(3) form in UTC, as From_ lines carry it: `Thu Nov  7 13:05:09 2024`. */
export function asctime(d: Date): string {
  const p2 = (n: number): string => String(n).padStart(2, "0");
  return (
    `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ` +
    `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`
  );
}

/**
 * One mboxrd entry: the From_ line, the message with LF line endings (CRLF becomes LF; a lone CR is
 * kept), every line matching `>*From ` given one more `>`, a final newline and an empty line.
 */
export function mboxrdEntry(raw: Buffer, envelopeSender: string, received: Date): Buffer {
  // eslint-disable-next-line no-control-regex
  const sender = envelopeSender.replace(/^<|>$/g, "").replace(/[\s\x00-\x1f\x7f]+/g, "-") || "MAILER-DAEMON";
  // latin1 keeps every byte as one char, so 8-bit and binary bodies pass through unchanged
  let s = raw.toString("latin1").replace(/\r\n/g, "\n");
  s = s.replace(/(^|\n)(>*From )/g, "$1>$2");
  if (!s.endsWith("\n")) s += "\n";
  return Buffer.concat([
    Buffer.from(`From ${sender} ${asctime(received)}\n`, "utf8"),
    Buffer.from(s + "\n", "latin1"),
  ]);
}

/** The entries of an mboxrd file: From_ line and message with the quoting undone (LF endings). */
export function splitMboxrd(data: Buffer): { fromLine: string; message: Buffer }[] {
  const s = data.toString("latin1");
  const starts: number[] = [];
  for (let i = s.startsWith("From ") ? 0 : s.indexOf("\nFrom "); i !== -1; i = s.indexOf("\nFrom ", i + 1)) {
    starts.push(i === 0 && s.startsWith("From ") ? 0 : i + 1);
  }
  return starts.map((start, k) => {
    const stop = k + 1 < starts.length ? (starts[k + 1] as number) : s.length;
    const nl = s.indexOf("\n", start);
    let body = s.slice(nl + 1, stop);
    if (body.endsWith("\n\n")) body = body.slice(0, -1); // the separating empty line
    body = body.replace(/(^|\n)>(>*From )/g, "$1$2");
    return { fromLine: s.slice(start, nl), message: Buffer.from(body, "latin1") };
  });
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.stat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

async function readIndex(idx: string): Promise<string> {
  try {
    return (await fsp.readFile(idx)).toString("latin1");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}

async function writeAt(fh: fsp.FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Under the lock: the exactly-once append described at the top of this file. */
async function appendLocked(
  mbox: string,
  idx: string,
  entryId: string,
  entry: Buffer,
  stillLocked: () => boolean,
): Promise<"appended" | "already"> {
  let index = await readIndex(idx);
  if (index.length > 0 && !index.endsWith("\n")) {
    // a torn index line: its append never completed, so it does not count
    index = index.slice(0, index.lastIndexOf("\n") + 1);
    await fsp.truncate(idx, Buffer.byteLength(index, "latin1"));
  }
  if (index.startsWith(entryId + " ") || index.includes("\n" + entryId + " ")) return "already";
  const lastLine = index.slice(index.lastIndexOf("\n", index.length - 2) + 1, -1);
  const lastEnd = lastLine === "" ? 0 : Number(lastLine.slice(lastLine.lastIndexOf(" ") + 1));
  if (!Number.isSafeInteger(lastEnd) || lastEnd < 0)
    throw new ArchiveError(idx, `last index line is not "<id> <offset>": ${JSON.stringify(lastLine)}`);

  const fh = await fsp.open(mbox, "r+");
  try {
    const { size } = await fh.stat();
    if (size < lastEnd)
      throw new ArchiveError(
        mbox,
        `shorter (${size} bytes) than its index says (${lastEnd}); it was changed outside qrunner: restore it, or move ${path.basename(idx)} away to start a new index`,
      );
    if (size > lastEnd) await fh.truncate(lastEnd); // an append that died before its index line
    await writeAt(fh, entry, lastEnd);
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (!stillLocked())
    throw new ArchiveError(mbox, "lost the archive lock during the append; the entry will be retried");
  const ih = await fsp.open(idx, "a", 0o600);
  try {
    await ih.write(Buffer.from(`${entryId} ${lastEnd + entry.length}\n`, "latin1"));
    await ih.sync();
  } finally {
    await ih.close();
  }
  return "appended";
}

/**
 * Append one message to `<dir>/<YYYY-MM>.mbox` exactly once per `entryId` (the queue entry's id).
 * Files are created 0600, directories 0700. Throws ArchiveError when the archive cannot be written
 * now; the caller keeps the entry and retries.
 */
export async function appendToArchive(
  dir: string,
  entryId: string,
  raw: Buffer,
  envelopeSender: string,
  received: Date,
  opts: ArchiveOptions = {},
): Promise<"appended" | "already"> {
  if (!ENTRY_ID_RE.test(entryId))
    throw new ArchiveError(dir, `not a usable entry id: ${JSON.stringify(entryId)}`);
  const month = archiveMonth(received);
  const mbox = path.join(dir, `${month}.mbox`);
  const idx = path.join(dir, `${month}.idx`);
  const entry = mboxrdEntry(raw, envelopeSender, received);

  try {
    if (!(await exists(dir))) {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      await fsyncDir(path.dirname(dir));
    }
    if (!(await exists(mbox)) || !(await exists(idx))) {
      // the lock needs the mbox to exist; creating both files is idempotent ("a" never truncates)
      await (await fsp.open(mbox, "a", 0o600)).close();
      await (await fsp.open(idx, "a", 0o600)).close();
      await fsyncDir(dir);
    }
  } catch (err) {
    throw new ArchiveError(dir, `cannot create the archive files: ${(err as Error).message}`, { cause: err });
  }

  const stale = Math.max(2000, opts.staleMs ?? 10_000);
  let compromised = false;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(mbox, {
      realpath: false,
      stale,
      // enough retries, capped at 500 ms apart, to outlast a dead holder's stale lock
      retries: {
        retries: Math.ceil((stale * 3) / 500),
        minTimeout: 20,
        maxTimeout: 500,
        factor: 1.5,
        randomize: true,
      },
      onCompromised: () => {
        compromised = true; // checked before the index line is written; proper-lockfile would throw from a timer
      },
    });
  } catch (err) {
    throw new ArchiveError(
      mbox,
      `archive is locked by another process (${(err as Error).message}); retry later`,
      { cause: err },
    );
  }
  try {
    return await appendLocked(mbox, idx, entryId, entry, () => !compromised);
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(mbox, `cannot append: ${(err as Error).message}`, { cause: err });
  } finally {
    await release().catch(() => undefined); // a compromised lock is already gone
  }
}
