/**
 * Keeps `<state>/status.json` current while the master runs: what it says about the master (its
 * state, readiness and config rereads, which the master reports here as they happen) and when it is
 * written (coalesced: within 100 ms of an event, and every interval regardless; a failed write is only
 * logged). The file's shape and its atomic write are status-file.ts's. Kept apart from the master so
 * that its run, reload and shutdown do not carry the status bookkeeping and write timing.
 */
import os from "node:os";
import type { Config } from "../config/schema.js";
import type { Logger } from "../util/log.js";
import { describeError, formatIssue, type ConfigIssue } from "../util/errors.js";
import { bootId } from "./proc.js";
import { writeStatus, type MasterStatus, type RejectedEdit, type WorkerStatus } from "./status-file.js";

/** What the status shows besides the master's own fields: the config in force and the workers. */
export interface StatusSource {
  config: () => Config;
  workers: () => WorkerStatus[];
}

export class StatusWriter {
  /** set by the master as it starts, runs and stops */
  state: MasterStatus["master"]["state"] = "starting";
  /** set by the master once every worker is ready */
  readyMs: number | null = null;
  private loadedAt = Date.now();
  private rejected: RejectedEdit | null = null;
  private reloads: MasterStatus["reload"] = { count: 0, at: null, why: null, ok: null };
  private readonly startedAt = Date.now();
  private readonly bootId = bootId();
  private statusTimer: NodeJS.Timeout | null = null;
  private statusSoon: NodeJS.Timeout | null = null;
  private statusWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly stateDir: string,
    private readonly source: StatusSource,
    private readonly log: Logger,
  ) {}

  /** From now on write every `intervalMs`, events or not. */
  every(intervalMs: number): void {
    this.statusTimer = setInterval(() => this.changed(), intervalMs);
  }

  /** A config reread (`why`: edit, SIGHUP) found these issues; the old config stays in force. */
  rejectedEdit(why: string, issues: ConfigIssue[]): void {
    this.rejected = { at: Date.now(), issues, message: issues.map(formatIssue).join("\n") };
    this.reloads = { count: this.reloads.count + 1, at: Date.now(), why, ok: false };
  }

  /** A config reread (`why`: edit, SIGHUP) was accepted: the new config is in force from now. */
  reloaded(why: string): void {
    this.loadedAt = Date.now();
    this.rejected = null;
    this.reloads = { count: this.reloads.count + 1, at: this.loadedAt, why, ok: true };
  }

  /** Coalesce status writes: one within 100 ms of an event, one every interval regardless. */
  changed(): void {
    if (this.statusSoon || this.state === "stopped") return;
    this.statusSoon = setTimeout(() => {
      this.statusSoon = null;
      this.statusWrite = this.statusWrite.then(() => this.writeStatusNow());
    }, 100);
  }

  /** The master has stopped: no more writes but the last one (no workers), after those under way. */
  async stopped(): Promise<void> {
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.statusSoon) clearTimeout(this.statusSoon);
    this.statusTimer = this.statusSoon = null;
    this.state = "stopped";
    await this.statusWrite;
    await this.writeStatusNow();
  }

  private async writeStatusNow(): Promise<void> {
    const config = this.source.config();
    const status: MasterStatus = {
      format: 1,
      updatedAt: Date.now(),
      master: {
        pid: process.pid,
        host: os.hostname(),
        bootId: this.bootId,
        state: this.state,
        startedAt: this.startedAt,
        readyMs: this.readyMs,
        rss: process.memoryUsage.rss(),
      },
      config: { file: config.file, version: config.version, loadedAt: this.loadedAt },
      rejectedEdit: this.rejected,
      reload: this.reloads,
      workers: this.state === "stopped" ? [] : this.source.workers(),
    };
    try {
      await writeStatus(this.stateDir, status);
    } catch (err) {
      this.log.warn({ err: describeError(err), state: this.stateDir }, "cannot write status.json");
    }
  }
}
