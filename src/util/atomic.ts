/** Write a small file whole or not at all, durably: a temp file beside it, fsync, rename, directory fsync. */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { fsyncDir } from "./dirsync.js";

/**
 * `mode` is the new file's mode exactly (not narrowed by the umask); `owner`, when given, its owner
 * (root replacing a file another user owns keeps it theirs).
 */
export async function writeFileAtomic(
  file: string,
  data: string | Buffer,
  mode = 0o600,
  owner?: { uid: number; gid: number },
): Promise<void> {
  const dir = path.dirname(file);
  // a leading dot and a .tmp suffix: readers listing *.json never see a half-written file
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const h = await fsp.open(tmp, "wx", mode);
  try {
    try {
      await h.writeFile(data);
      await h.chmod(mode);
      if (owner) await h.chown(owner.uid, owner.gid);
      await h.sync();
    } finally {
      await h.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}
