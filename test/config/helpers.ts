/** Temp folders with real files, for the config and list loader tests. */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError, type ConfigIssue } from "../../src/util/errors.js";

export interface TempDir {
  readonly dir: string;
  /** write a file (creating folders), return its absolute path */
  write(rel: string, text: string): Promise<string>;
  remove(): Promise<void>;
}

export async function tempDir(): Promise<TempDir> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-config-"));
  return {
    dir,
    async write(rel, text) {
      const file = path.join(dir, rel);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o750 });
      await writeFile(file, text, { mode: 0o640 });
      return file;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Join lines, so that the line numbers in a test read off the array index + 1. */
export function lines(...ls: string[]): string {
  return ls.join("\n") + "\n";
}

/** The issues loadConfig reports for `file` (failing the test unless it throws a ConfigError). */
export async function issuesOf(file: string): Promise<ConfigIssue[]> {
  const err: unknown = await loadConfig(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return [...(err as ConfigError).issues];
}
