/**
 * What the console reads and acts on, passed in by whoever serves it (the master, or `qrunner web`):
 * the settings in force, the master's status (as `qrunner status` reads it; the web layer sits below
 * the master and gets it as data), and a logger. The queue, list and health state it reads itself
 * from the directories the config names.
 */
import type { MasterStatus } from "../protocol/status.js";
import type { Logger } from "../util/log.js";
import type { Settings } from "./access.js";

export interface DaemonView {
  /** a master runs (its status below is current) */
  running: boolean;
  /** the last status the master wrote; null when there is none */
  status: MasterStatus | null;
}

export interface ConsoleDeps {
  /** the config and lists in force; called on every request */
  settings(): Settings | Promise<Settings>;
  daemon(): Promise<DaemonView>;
  logger: Logger;
  now?: () => number;
}
