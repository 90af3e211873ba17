/** Shared by the config and list loader tests (and `config check`): files in a temp dir, their issues. */
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { ConfigError, type ConfigIssue } from "../../src/util/errors.js";

export { tempDirEach, type TempDir } from "../helpers/tmp.js";

/** Join lines, so that the line numbers in a test read off the array index + 1. */
export function lines(...ls: string[]): string {
  return ls.join("\n") + "\n";
}

/** The issues of the ConfigError a load must fail with. */
export async function issuesOf(load: Promise<unknown>): Promise<ConfigIssue[]> {
  const err: unknown = await load.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return [...(err as ConfigError).issues];
}

/** The issues `loadConfig` reports for a file it must refuse. */
export const configIssues = (file: string): Promise<ConfigIssue[]> => issuesOf(loadConfig(file));
