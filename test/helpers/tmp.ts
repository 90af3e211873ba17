/** Temp directories with real files for tests, removed afterwards. */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach } from "vitest";

export interface TempDir {
  readonly dir: string;
  /** write a file (creating its folders 0750, the file 0640), return its absolute path */
  write(rel: string, text: string): Promise<string>;
  cleanup(): Promise<void>;
}

export async function tempDir(prefix = "qrunner-test-"): Promise<TempDir> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    dir,
    async write(rel, text) {
      const file = path.join(dir, rel);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o750 });
      await writeFile(file, text, { mode: 0o640 });
      return file;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A fresh temp dir for each test of the calling file (made before it, removed after it). */
export function tempDirEach(prefix?: string): TempDir {
  let current: TempDir | undefined;
  beforeEach(async () => {
    current = await tempDir(prefix);
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  const now = (): TempDir => {
    if (!current) throw new Error("the temp dir exists only while a test runs");
    return current;
  };
  return {
    get dir() {
      return now().dir;
    },
    write: (rel, text) => now().write(rel, text),
    cleanup: () => now().cleanup(),
  };
}
