/**
 * The daemon's folders and files must be its own (as `postfix check` warns): a queue, state or list
 * folder that another user (or a group) can write lets that user inject mail, rewrite members or
 * plant a pid for root to signal. `qrunner start` and `config check` refuse:
 *   - a folder or file writable by its group or by others (mode & 0o022);
 *   - one owned by a user other than the daemon's (root is accepted too: /etc/qrunner is root's).
 * Checked: the config file; the qfiles folder and its queue folders (not the queue files: millions,
 * and qrunner writes them 0600 itself); the state and lists folders with everything under them (up to
 * MAX_ENTRIES, symlinks not followed). Missing folders are fine: the daemon creates them 0700.
 */
import { readFileSync } from "node:fs";
import { lstat, readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { ConfigIssue } from "../util/errors.js";
import type { Config } from "./schema.js";

/** Entries looked at under one tree at most (an archive of years of mbox files stays cheap). */
export const MAX_ENTRIES = 20_000;

export interface PermissionOptions {
  /** the daemon's uid; default: this process's, or (as root) the owner of the qfiles folder */
  daemonUid?: number;
}

interface Found {
  path: string;
  mode: number;
  uid: number;
  dir: boolean;
}

/** A user name for the messages, best effort (/etc/passwd); the number when unknown. */
function userName(uid: number): string {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [name, , id] = line.split(":");
      if (id === String(uid) && name) return name;
    }
  } catch {
    // no passwd file: the number says enough
  }
  return String(uid);
}

async function statOf(p: string, follow: boolean): Promise<Found | null> {
  try {
    const s = follow ? await stat(p) : await lstat(p);
    if (s.isSymbolicLink()) return null;
    return { path: p, mode: s.mode & 0o7777, uid: s.uid, dir: s.isDirectory() };
  } catch {
    return null;
  }
}

/** `root` itself (symlink followed) and, `depth` levels down, what is under it, up to MAX_ENTRIES. */
async function walk(root: string, depth: number, dirsOnly: boolean): Promise<Found[]> {
  const top = await statOf(root, true);
  if (!top) return [];
  const out: Found[] = [top];
  const queue: [string, number][] = top.dir ? [[root, 0]] : [];
  while (queue.length > 0 && out.length < MAX_ENTRIES) {
    const [dir, level] = queue.shift()!;
    if (level >= depth) continue;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      if (out.length >= MAX_ENTRIES) break;
      const f = await statOf(path.join(dir, name), false);
      if (!f || (dirsOnly && !f.dir)) continue;
      out.push(f);
      if (f.dir) queue.push([f.path, level + 1]);
    }
  }
  return out;
}

/** Who the daemon runs as: this process, or as root the owner of the qfiles folder (else root). */
async function defaultDaemonUid(config: Config): Promise<number> {
  const uid = process.geteuid?.() ?? 0;
  if (uid !== 0) return uid;
  return (await statOf(config.qfiles, true))?.uid ?? 0;
}

function octal(mode: number): string {
  return "0" + mode.toString(8).padStart(3, "0");
}

/** Every unsafe folder or file of the site, one issue each (at line 1 col 1 of the path). */
export async function checkPermissions(config: Config, opts: PermissionOptions = {}): Promise<ConfigIssue[]> {
  const daemonUid = opts.daemonUid ?? (await defaultDaemonUid(config));
  const daemon = userName(daemonUid);
  const found = [
    ...(await walk(config.file, 0, false)),
    ...(await walk(config.qfiles, 1, true)),
    ...(await walk(config.state, Infinity, false)),
    ...(await walk(config.lists, Infinity, false)),
  ];
  const seen = new Set<string>();
  const issues: ConfigIssue[] = [];
  for (const f of found) {
    if (seen.has(f.path)) continue;
    seen.add(f.path);
    const what = f.dir ? "folder" : "file";
    if ((f.mode & 0o022) !== 0) {
      const who = [(f.mode & 0o020) !== 0 ? "its group" : "", (f.mode & 0o002) !== 0 ? "every user" : ""]
        .filter(Boolean)
        .join(" and ");
      issues.push({
        file: f.path,
        line: 1,
        col: 1,
        message: `this ${what} is writable by ${who} (mode ${octal(f.mode)}); fix: chmod go-w ${f.path} (folders 0750 or 0700, files 0640 or 0600)`,
      });
    }
    if (f.uid !== daemonUid && f.uid !== 0) {
      issues.push({
        file: f.path,
        line: 1,
        col: 1,
        message: `this ${what} belongs to ${userName(f.uid)} (uid ${f.uid}), not to the daemon's user ${daemon} (uid ${daemonUid}) or root; fix: chown ${daemon} ${f.path}`,
      });
    }
  }
  return issues;
}
