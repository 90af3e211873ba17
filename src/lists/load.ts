/**
 * Loading the lists folder: one `<list-address>.yaml` per list, validated with the same file:line:col rigour
 * as the config, members files merged in, and checks across lists (one file per address, no list whose
 * address is another list's -request/-bounces/... address). All issues of all lists are thrown together.
 *
 * The work is split into pure steps (list-validation.ts) around two rounds of reading done here (list
 * files, then members files), so the async and sync loaders share everything but the reads.
 */
import { readFileSync, readdirSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import type { Dirent } from "node:fs";
import path from "node:path";
import { ConfigError } from "../util/errors.js";
import type { ConfigIssue } from "../util/errors.js";
import { inspectConfig, inspectConfigSync, unreadable } from "../config/load.js";
import type { Config } from "../config/schema.js";
import type { ListConfig } from "./schema.js";
import { finish, membersFilesOf, parseAll, type ListsInspection, type Read } from "./list-validation.js";

export type { ListsInspection };

/** All lists of the folder, keyed by lowercased list address; throws ConfigError with every issue found. */
export async function loadLists(dir: string): Promise<Map<string, ListConfig>> {
  return unwrap(await inspectLists(dir));
}

export function loadListsSync(dir: string): Map<string, ListConfig> {
  return unwrap(inspectListsSync(dir));
}

export async function inspectLists(dir: string): Promise<ListsInspection> {
  const abs = path.resolve(dir);
  let entries: Dirent[] | Error;
  try {
    entries = await readdir(abs, { withFileTypes: true });
  } catch (err) {
    entries = err as Error;
  }
  const files = listFiles(abs, entries);
  if (!Array.isArray(files)) return files;
  const reads = await Promise.all(files.map((f) => readFile(f).catch((e: unknown) => e as Error)));
  const drafts = parseAll(files, reads);
  const membersFiles = membersFilesOf(drafts);
  const members = await Promise.all(membersFiles.map((f) => readFile(f).catch((e: unknown) => e as Error)));
  return finish(drafts, new Map(membersFiles.map((f, i) => [f, members[i] ?? new Error("not read")])));
}

export function inspectListsSync(dir: string): ListsInspection {
  const abs = path.resolve(dir);
  const tryRead = <T>(f: () => T): T | Error => {
    try {
      return f();
    } catch (err) {
      return err as Error;
    }
  };
  const files = listFiles(
    abs,
    tryRead(() => readdirSync(abs, { withFileTypes: true })),
  );
  if (!Array.isArray(files)) return files;
  const drafts = parseAll(
    files,
    files.map((f) => tryRead(() => readFileSync(f))),
  );
  const members = new Map<string, Read>();
  for (const f of membersFilesOf(drafts))
    members.set(
      f,
      tryRead(() => readFileSync(f)),
    );
  return finish(drafts, members);
}

/** Config and lists together; issues of both are thrown in one ConfigError. */
export async function loadAll(
  configFile: string,
): Promise<{ config: Config; lists: Map<string, ListConfig> }> {
  const c = await inspectConfig(configFile);
  const l =
    c.listsDir !== undefined
      ? await inspectLists(c.listsDir)
      : { lists: new Map<string, ListConfig>(), issues: [] };
  if (!c.config || c.issues.length > 0 || l.issues.length > 0)
    throw new ConfigError([...c.issues, ...l.issues]);
  return { config: c.config, lists: l.lists };
}

export function loadAllSync(configFile: string): { config: Config; lists: Map<string, ListConfig> } {
  const c = inspectConfigSync(configFile);
  const l =
    c.listsDir !== undefined
      ? inspectListsSync(c.listsDir)
      : { lists: new Map<string, ListConfig>(), issues: [] };
  if (!c.config || c.issues.length > 0 || l.issues.length > 0)
    throw new ConfigError([...c.issues, ...l.issues]);
  return { config: c.config, lists: l.lists };
}

function unwrap(r: ListsInspection): Map<string, ListConfig> {
  if (r.issues.length > 0) throw new ConfigError(r.issues);
  return r.lists;
}

/** The list files of the folder (sorted), or the inspection to return at once (no folder, unreadable). */
function listFiles(dir: string, entries: Dirent[] | Error): string[] | ListsInspection {
  if (entries instanceof Error) {
    // no folder yet: a fresh install with no lists, not an error
    if ((entries as NodeJS.ErrnoException).code === "ENOENT") return { lists: new Map(), issues: [] };
    return {
      lists: new Map(),
      issues: [{ file: dir, line: 1, col: 1, message: unreadable("the lists folder", entries) }],
    };
  }
  const files: string[] = [];
  const misnamed: ConfigIssue[] = [];
  for (const e of entries) {
    // editors' hidden swap and backup files are not lists
    if (e.name.startsWith(".") || !(e.isFile() || e.isSymbolicLink())) continue;
    if (e.name.endsWith(".yaml")) files.push(path.join(dir, e.name));
    else if (e.name.endsWith(".yml"))
      misnamed.push({
        file: path.join(dir, e.name),
        line: 1,
        col: 1,
        message: `list files end in .yaml: rename it to ${e.name.slice(0, -4)}.yaml, or it is ignored`,
      });
  }
  files.sort();
  return misnamed.length > 0 ? { lists: new Map(), issues: misnamed } : files;
}
