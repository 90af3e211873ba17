/**
 * The shape of `<state>/status.json` (src/master/status-file.ts writes and reads it): what the master
 * tells its readers, `qrunner status` and the web console (which sits below the master and reads it as
 * data). Stable: fields are only added.
 */
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
