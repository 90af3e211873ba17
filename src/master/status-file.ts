/**
 * `<state>/status.json`: what the master knows, written atomically (temp file + rename) on every
 * event and every few seconds, read by `qrunner status`. The shape is stable: fields are only added.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ConfigIssue } from "../util/errors.js";

export type WorkerState =
  "starting" | "ready" | "stopping" | "backoff" | "stalled" | "gave-up" | "config-error" | "stopped";

export interface WorkerStatus {
  key: string;
  runner: string;
  slice: string;
  host?: string;
  pid: number | null;
  state: WorkerState;
  /** restarts since the master started (crashes, stalls; not operator-requested restarts) */
  restarts: number;
  handled: number;
  failed: number;
  due: number;
  inHand: number;
  lastError: string | null;
  /** seconds since the worker last finished an entry (or started); null before its first heartbeat */
  sinceProgress: number | null;
  /** why the worker is not working although entries are due */
  waiting: string | null;
  /** ms epoch of the current process's spawn */
  startedAt: number | null;
  /** in backoff: ms epoch of the next start */
  nextStartAt: number | null;
}

export interface RejectedEdit {
  /** ms epoch */
  at: number;
  issues: ConfigIssue[];
  message: string;
}

export interface MasterStatus {
  format: 1;
  /** ms epoch of this write */
  updatedAt: number;
  master: {
    pid: number;
    host: string;
    /** /proc/sys/kernel/random/boot_id of the master's boot (null off Linux; absent from earlier versions) */
    bootId?: string | null;
    state: "starting" | "running" | "stopping" | "stopped";
    startedAt: number;
    /** ms from start until every worker had sent `ready`; null until then */
    readyMs: number | null;
    rss: number;
  };
  config: { file: string; version: string; loadedAt: number };
  /** the last rejected edit; cleared when a later edit validates */
  rejectedEdit: RejectedEdit | null;
  /** config rereads (file edits and SIGHUP) so far, and how the last one went */
  reload: { count: number; at: number | null; why: string | null; ok: boolean | null };
  workers: WorkerStatus[];
}

export function statusFile(stateDir: string): string {
  return path.join(stateDir, "status.json");
}

export async function writeStatus(stateDir: string, status: MasterStatus): Promise<void> {
  const file = statusFile(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(status, null, 2) + "\n", { mode: 0o644 });
  await rename(tmp, file);
}

/** The last status the master wrote, or null when there is none (or it is unreadable). */
export async function readStatus(stateDir: string): Promise<MasterStatus | null> {
  try {
    const parsed = JSON.parse(await readFile(statusFile(stateDir), "utf8")) as unknown;
    if (typeof parsed === "object" && parsed !== null && (parsed as { format?: unknown }).format === 1)
      return parsed as MasterStatus;
  } catch {
    // missing or half-written by a foreign tool: no status
  }
  return null;
}
