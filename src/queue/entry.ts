/**
 * The entry file format (version 1). One file holds one entry:
 *
 *   QRQ1 <metaLength> <messageLength>\n
 *   <metadata: one JSON object, metaLength bytes>\n
 *   <message: the raw bytes exactly as received, messageLength bytes>
 *
 * The lengths make a truncated or padded file detectable without trusting the JSON; metadata is plain
 * JSON (data, never code); the message is never re-encoded, so 8-bit bytes, CR/LF and NUL survive.
 */
import { CorruptEntryError } from "../util/errors.js";
import type { EntryMeta } from "./types.js";

const MAGIC = "QRQ1";
/** The header line is short; anything longer than this is not ours. */
const MAX_HEADER_LINE = 64;

export function encodeEntry(meta: EntryMeta, message: Buffer): Buffer[] {
  const metaBuf = Buffer.from(JSON.stringify(meta), "utf8");
  const head = Buffer.from(`${MAGIC} ${metaBuf.length} ${message.length}\n`, "latin1");
  return [head, metaBuf, Buffer.from("\n", "latin1"), message];
}

export function decodeEntry(file: string, data: Buffer): { meta: EntryMeta; message: Buffer } {
  const nl = data.indexOf(0x0a);
  if (nl < 0 || nl > MAX_HEADER_LINE) throw new CorruptEntryError(file, "no entry header line");
  const m = /^QRQ1 (\d+) (\d+)$/.exec(data.subarray(0, nl).toString("latin1"));
  if (!m) throw new CorruptEntryError(file, "not a qrunner entry (bad magic or header)");
  const metaLen = Number(m[1]);
  const msgLen = Number(m[2]);
  const expected = nl + 1 + metaLen + 1 + msgLen;
  if (data.length !== expected)
    throw new CorruptEntryError(file, `truncated or padded: ${data.length} bytes, header says ${expected}`);
  if (data[nl + 1 + metaLen] !== 0x0a) throw new CorruptEntryError(file, "metadata not terminated");
  let meta: unknown;
  try {
    meta = JSON.parse(data.subarray(nl + 1, nl + 1 + metaLen).toString("utf8"));
  } catch (err) {
    throw new CorruptEntryError(file, "metadata is not JSON", { cause: err });
  }
  checkMeta(file, meta);
  return { meta, message: data.subarray(nl + 1 + metaLen + 1) };
}

function checkMeta(file: string, meta: unknown): asserts meta is EntryMeta {
  if (typeof meta !== "object" || meta === null)
    throw new CorruptEntryError(file, "metadata is not an object");
  const m = meta as Record<string, unknown>;
  if (m["version"] !== 1)
    throw new CorruptEntryError(file, `unknown entry format version ${String(m["version"])}`);
  if (typeof m["sender"] !== "string") throw new CorruptEntryError(file, "metadata lacks sender");
  if (!Array.isArray(m["recipients"]) || !m["recipients"].every((r) => typeof r === "string"))
    throw new CorruptEntryError(file, "metadata lacks recipients");
  if (
    typeof m["attempts"] !== "number" ||
    typeof m["recoveries"] !== "number" ||
    !Array.isArray(m["failures"])
  )
    throw new CorruptEntryError(file, "metadata lacks attempts, recoveries or failures");
}
