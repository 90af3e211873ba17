/**
 * A host's health record on disk (`<state>/hosts/<id>.json`): its shape, its file name, reading and
 * checking it. The circuit breaker that changes records is HostHealthStore (health.ts).
 */
import { readFileSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { createHash } from "node:crypto";
import { HealthStoreError } from "./errors.js";
import type { HostErrorKind } from "./outcome.js";

export type HostState = "up" | "down";

export interface HostHealthRecord {
  id: string;
  state: HostState;
  /** ms epoch when the host entered this state (or was first recorded) */
  since: number;
  /** host errors since the last success */
  consecutiveFailures: number;
  lastError: string | null;
  lastErrorKind: HostErrorKind | null;
  /** ms epoch of the last host error */
  lastErrorAt: number | null;
  /** ms epoch of the last success */
  lastSuccess: number | null;
  /** while down: when the next probe is due (ms epoch); null while up */
  nextProbe: number | null;
  /** while down: the current probe interval (ms); null while up */
  probeInterval: number | null;
  /** ms epoch when a worker claimed the current probe (claimProbe); null when none is running */
  probeStarted: number | null;
}

const ERROR_KINDS: readonly (HostErrorKind | null)[] = [
  "connect",
  "timeout",
  "greeting",
  "tls",
  "auth",
  null,
];

/** A record read back from disk, checked field by field; undefined when it is not one. */
function parseRecord(value: unknown): HostHealthRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<keyof HostHealthRecord, unknown>;
  const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  const numOrNull = (v: unknown): boolean => v === null || num(v);
  const ok =
    typeof r.id === "string" &&
    (r.state === "up" || r.state === "down") &&
    num(r.since) &&
    Number.isInteger(r.consecutiveFailures) &&
    (r.consecutiveFailures as number) >= 0 &&
    (r.lastError === null || typeof r.lastError === "string") &&
    ERROR_KINDS.includes(r.lastErrorKind as HostErrorKind | null) &&
    numOrNull(r.lastErrorAt) &&
    numOrNull(r.lastSuccess) &&
    numOrNull(r.nextProbe) &&
    numOrNull(r.probeInterval) &&
    numOrNull(r.probeStarted);
  return ok ? (value as HostHealthRecord) : undefined;
}

/** The directory of the health records under the state directory. */
export function hostsDir(stateDir: string): string {
  return path.join(stateDir, "hosts");
}

/**
 * A file name for a host id that cannot leave the directory: letters, digits, `.`, `_` and `-` are kept,
 * every other byte becomes %XX (so distinct ids never collide), a leading dot is escaped, and very long
 * ids are replaced by a hash.
 */
export function hostFileName(id: string): string {
  let s = "";
  for (const byte of Buffer.from(id, "utf8")) {
    const c = String.fromCharCode(byte);
    s += /[A-Za-z0-9._-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (s.startsWith(".")) s = `%2E${s.slice(1)}`;
  if (s === "" || s.length > 200) s = `sha1-${createHash("sha1").update(id).digest("hex")}`;
  return `${s}.json`;
}

/** The record of a host nothing has gone wrong with. */
export function freshRecord(id: string, now: number): HostHealthRecord {
  return {
    id,
    state: "up",
    since: now,
    consecutiveFailures: 0,
    lastError: null,
    lastErrorKind: null,
    lastErrorAt: null,
    lastSuccess: null,
    nextProbe: null,
    probeInterval: null,
    probeStarted: null,
  };
}

/** May a message be sent through this host now: it is up, or down with its probe due. */
export function isAvailable(record: HostHealthRecord, now: number): boolean {
  return record.state === "up" || (record.nextProbe !== null && now >= record.nextProbe);
}

/**
 * One host's record, or undefined when it has none (or an unreadable one). Read synchronously: the
 * file is a few hundred bytes on local disk, and a worker reads it for every entry of a down host;
 * four thread-pool round trips would cost more than the read.
 */
export async function readRecord(file: string, id: string): Promise<HostHealthRecord | undefined> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new HealthStoreError(`cannot read host health ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const record = parseRecord(JSON.parse(text));
    // a damaged or foreign file is treated as no record: the host counts as up and the next write replaces it
    return record?.id === id ? record : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The health of every recorded host, by id, for `qrunner status`. With `ids`, exactly those hosts in
 * that order, a host without a record being up.
 */
export async function readHostHealth(stateDir: string, ids?: readonly string[]): Promise<HostHealthRecord[]> {
  const dir = hostsDir(stateDir);
  if (ids) {
    const now = Date.now();
    return Promise.all(
      ids.map(async (id) => (await readRecord(path.join(dir, hostFileName(id)), id)) ?? freshRecord(id, now)),
    );
  }
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new HealthStoreError(`cannot list host health in ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const records: HostHealthRecord[] = [];
  for (const name of names.filter((n) => n.endsWith(".json") && !n.startsWith("."))) {
    try {
      const record = parseRecord(JSON.parse(await readFile(path.join(dir, name), "utf8")));
      if (record && hostFileName(record.id) === name) records.push(record);
    } catch {
      // removed meanwhile, or damaged: not shown
    }
  }
  return records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
