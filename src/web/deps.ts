/**
 * What the console reads and acts on, passed in by whoever serves it (the master, or `qrunner web`):
 * the settings in force, the master's status (as `qrunner status` reads it; the web layer sits below
 * the master and gets it as data), and a logger. The queue, list and health state it reads itself
 * from the directories the config names.
 */
import type { Logger } from "../util/log.js";
import type { Settings } from "./access.js";

/** The part of the master's status.json the console shows (src/master/status-file.ts MasterStatus). */
export interface DaemonStatus {
  updatedAt: number;
  master: {
    pid: number;
    host: string;
    state: string;
    startedAt: number;
    readyMs: number | null;
    rss: number;
  };
  config: { file: string; version: string; loadedAt: number };
  rejectedEdit: { at: number; message: string } | null;
  reload: { count: number; at: number | null; why: string | null; ok: boolean | null };
  workers: readonly {
    key: string;
    runner: string;
    slice: string;
    host?: string;
    pid: number | null;
    state: string;
    restarts: number;
    handled: number;
    failed: number;
    due: number;
    inHand: number;
    lastError: string | null;
    sinceProgress: number | null;
    waiting: string | null;
  }[];
}

export interface DaemonView {
  /** a master runs (its status below is current) */
  running: boolean;
  /** the last status the master wrote; null when there is none */
  status: DaemonStatus | null;
}

export interface ConsoleDeps {
  /** the config and lists in force; called on every request */
  settings(): Settings | Promise<Settings>;
  daemon(): Promise<DaemonView>;
  logger: Logger;
  now?: () => number;
}
