/**
 * A cache of the validated config and lists for `qrunner inject`, which an MTA runs once per message:
 * parsing YAML and validating with zod costs more than the rest of inject together. The cache holds
 * the result of `loadAll` with the identity (inode, size, mtime) of every file and folder it was
 * built from; any change to one of them is a miss and a full load. It lives in a private folder of the
 * current user (`$QRUNNER_CACHE_DIR`, else `<tmpdir>/qrunner-<uid>`, 0700, refused when it is a
 * symlink, owned by anyone else or open to others), so nobody else can plant a link there or point
 * inject at another queue; without such a folder inject simply loads the config every time.
 */
import { createHash } from "node:crypto";
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readFile, readdir, rename, stat, writeFile, unlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Config } from "../config/schema.js";
import type { ListConfig } from "./schema.js";

type Settings = { config: Config; lists: Map<string, ListConfig> };

/** [path, inode, size, mtimeMs]; size -1 for "does not exist" */
type Stamp = [string, number, number, number];

interface CacheFile {
  format: 1;
  stamps: Stamp[];
  config: Config;
  lists: [string, ListConfig][];
}

const uid = (): number => process.getuid?.() ?? 0;

/** The private cache folder, created 0700 when missing; null when it is not safely ours. */
async function cacheDir(): Promise<string | null> {
  const dir = process.env["QRUNNER_CACHE_DIR"] ?? path.join(os.tmpdir(), `qrunner-${uid()}`);
  await mkdir(dir, { mode: 0o700 }).catch(() => undefined);
  const st = await lstat(dir).catch(() => null);
  if (!st || !st.isDirectory() || st.uid !== uid() || (st.mode & 0o077) !== 0) return null;
  return dir;
}

function cacheFile(dir: string, configFile: string): string {
  const key = createHash("sha1").update(path.resolve(configFile)).digest("hex").slice(0, 16);
  return path.join(dir, `settings-${key}.json`);
}

async function stampOf(p: string): Promise<Stamp> {
  try {
    const st = await stat(p);
    return [p, st.ino, st.size, st.mtimeMs];
  } catch {
    return [p, 0, -1, 0];
  }
}

/** The files and folders a load depends on: config file, lists folder, list files, members files. */
async function stampsFor(
  configFile: string,
  listsDir: string | undefined,
  lists: Iterable<ListConfig>,
): Promise<Stamp[]> {
  const paths = [configFile];
  if (listsDir !== undefined) {
    paths.push(listsDir);
    const names = await readdir(listsDir).catch(() => [] as string[]);
    for (const n of names) paths.push(path.join(listsDir, n));
  }
  for (const l of lists) if (l.members_file !== undefined) paths.push(l.members_file);
  return Promise.all(paths.map(stampOf));
}

async function readCache(file: string): Promise<CacheFile | null> {
  try {
    const st = await stat(file);
    if (st.uid !== uid() || (st.mode & 0o077) !== 0) return null;
    const c = JSON.parse(await readFile(file, "utf8")) as CacheFile;
    if (c.format !== 1 || !Array.isArray(c.stamps)) return null;
    const now = await Promise.all(c.stamps.map((s) => stampOf(s[0])));
    return now.every((s, i) => s.join("\0") === c.stamps[i]?.join("\0")) ? c : null;
  } catch {
    return null;
  }
}

/** `loadAll`, answered from the cache when nothing it was built from has changed. */
export async function loadAllCached(configFile: string): Promise<Settings> {
  const dir = await cacheDir();
  const file = dir === null ? null : cacheFile(dir, configFile);
  const hit = file === null ? null : await readCache(file);
  if (hit) return { config: hit.config, lists: new Map(hit.lists) };
  const { loadAll } = await import("./load.js");
  const abs = path.resolve(configFile);
  // stamps taken before the load: an edit during the load makes the next use a miss, never stale
  const before = await stampsFor(abs, undefined, []);
  const settings = await loadAll(configFile);
  const stamps = [
    ...before,
    ...(await stampsFor(abs, settings.config.lists, settings.lists.values())).slice(1),
  ];
  if (file === null) return settings;
  const data: CacheFile = { format: 1, stamps, config: settings.config, lists: [...settings.lists] };
  const tmp = `${file}.${randomBytes(8).toString("hex")}.tmp`;
  try {
    // "wx": never through anything that is already there
    await writeFile(tmp, JSON.stringify(data), { mode: 0o600, flag: "wx" });
    await rename(tmp, file);
  } catch {
    // a cache that cannot be written only costs speed
    await unlink(tmp).catch(() => undefined);
  }
  return settings;
}
