/**
 * Changing one key of a list file in place (`qrunner list password` sets `moderator_password`). The
 * file is edited through the yaml package's Document API, so the operator's comments, key order and
 * styles survive; it is written to a temp file beside it, fsynced and renamed over the original (then
 * the directory is fsynced), so a crash leaves the old file or the new one, never half of either. A
 * symlinked list file is followed: the file it points to is replaced, the link stays.
 */
import { promises as fsp } from "node:fs";
import { parseDocument } from "yaml";
import { writeFileAtomic } from "../util/atomic.js";
import { QrunnerError } from "../util/errors.js";

/** The list file cannot be read, parsed or written. */
export class ListFileEditError extends QrunnerError {
  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super("ELIST_EDIT", `${file}: ${detail}`, options);
  }
}

/** Set top-level `key` to `value` (or remove it when `value` is undefined) in the list file `file`. */
export async function setListFileKey(file: string, key: string, value: string | undefined): Promise<void> {
  let real: string;
  let text: string;
  let st: Awaited<ReturnType<typeof fsp.stat>>;
  try {
    real = await fsp.realpath(file);
    st = await fsp.stat(real);
    text = await fsp.readFile(real, "utf8");
  } catch (err) {
    throw new ListFileEditError(file, `cannot read it (${(err as Error).message})`, { cause: err });
  }
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0)
    throw new ListFileEditError(file, `not valid YAML: ${doc.errors[0]?.message ?? "parse error"}`);
  if (value === undefined) doc.delete(key);
  else doc.set(key, value);
  // lineWidth 0: never refold the operator's long lines
  const out = doc.toString({ lineWidth: 0, flowCollectionPadding: false });

  try {
    // the old file's mode, and its owner when we may set it (root editing a qrunner-owned file)
    await writeFileAtomic(
      real,
      out,
      st.mode & 0o7777,
      process.getuid?.() === 0 ? { uid: st.uid, gid: st.gid } : undefined,
    );
  } catch (err) {
    throw new ListFileEditError(file, `cannot write it (${(err as Error).message})`, { cause: err });
  }
}
