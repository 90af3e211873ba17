/**
 * The held-post file: a JSON line of metadata followed by the raw message bytes exactly as received.
 * What a held post records, and how it is encoded and checked on reading, apart from the store in
 * held.ts that decides where the files go and who may take them.
 */
import { QrunnerError } from "../util/errors.js";

/** What the holder knows about a post. */
export interface HoldMeta {
  /** envelope sender ("" for the null sender) */
  sender: string;
  /** why it is held, for the moderator (e.g. "post from a non-member", "larger than 1MB") */
  reason: string;
  /** header From address, when parsed: where a rejection notice goes */
  from?: string;
  subject?: string;
  /** ms epoch when it first reached qrunner */
  received?: number;
}

export interface HeldMeta extends HoldMeta {
  version: 1;
  id: string;
  /** the list's posting address */
  list: string;
  /** ms epoch when held */
  heldAt: number;
  /** bytes of the raw message */
  size: number;
}

export interface HeldPost {
  meta: HeldMeta;
  raw: Buffer;
}

/** A held file we cannot read (truncated by hand, not ours). */
export class HeldCorruptError extends QrunnerError {
  readonly file: string;
  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super("EHELD_CORRUPT", `${file}: not a held post (${detail}); move it away`, options);
    this.file = file;
  }
}

export function encode(meta: HeldMeta, raw: Buffer): Buffer {
  // JSON.stringify escapes every newline inside strings, so the first "\n" ends the metadata
  return Buffer.concat([Buffer.from(JSON.stringify(meta) + "\n", "utf8"), raw]);
}

export function decode(file: string, data: Buffer): HeldPost {
  const nl = data.indexOf(0x0a);
  if (nl < 0) throw new HeldCorruptError(file, "no metadata line");
  let meta: unknown;
  try {
    meta = JSON.parse(data.subarray(0, nl).toString("utf8"));
  } catch (err) {
    throw new HeldCorruptError(file, "metadata is not JSON", { cause: err });
  }
  const m = meta as Partial<HeldMeta> | null;
  if (
    !m ||
    m.version !== 1 ||
    typeof m.id !== "string" ||
    typeof m.list !== "string" ||
    typeof m.heldAt !== "number"
  ) {
    throw new HeldCorruptError(file, "metadata lacks version, id, list or heldAt");
  }
  return { meta: m as HeldMeta, raw: data.subarray(nl + 1) };
}
