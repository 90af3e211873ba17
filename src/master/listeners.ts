/**
 * The listeners the master runs beside its workers: the LMTP intake (`intake.lmtp`), the metrics
 * endpoint (`metrics.listen`) and the web console (`web.listen`, src/web/; it runs in the master's
 * event loop: its requests are short, and the scrypt of a login runs on libuv's thread pool). `apply` follows the config: a listener whose address changed is closed
 * and opened on the new one, a removed one is closed.
 *
 * Each is loaded only when configured: a master without `intake.lmtp` never loads smtp-server nor the
 * intake code, and one without `metrics.listen` never loads prom-client nor the scrape sources (about
 * 10 MB of RSS together). The metrics object is made when the endpoint is first configured (at start,
 * or by a later edit: its counters then start from that moment, as after a master restart) and from
 * then on lives as long as the master (counters keep counting across reloads), whether or not its
 * endpoint is currently served; heartbeats before it exists are not counted.
 */
import type { Config } from "../config/schema.js";
import type { ListConfig } from "../lists/schema.js";
import type { LmtpListener } from "../intake/lmtp.js";
import type { ListenAddress } from "../intake/listen.js";
import type { WorkerMessage } from "../protocol/worker.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import type { HeartbeatOrigin, QrunnerMetrics } from "../metrics/metrics.js";
import type { MetricsServer } from "../metrics/server.js";
import type { WorkerView } from "../metrics/sources.js";
import type { WebConsole } from "../web/server.js";
import { readStatus } from "./status-file.js";

export interface ListenersOptions {
  settings: () => { config: Config; lists: ReadonlyMap<string, ListConfig> };
  workers: () => readonly WorkerView[];
  logger: Logger;
}

export class MasterListeners {
  /** null until `metrics.listen` is first configured */
  private metricsObj: QrunnerMetrics | null = null;
  private lmtp: { spec: string; listener: LmtpListener } | null = null;
  private http: { spec: string; server: MetricsServer } | null = null;
  private web: { spec: string; server: WebConsole } | null = null;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: ListenersOptions) {
    this.log = opts.logger;
  }

  /** The master's metrics; null while the endpoint has never been configured. */
  get metrics(): QrunnerMetrics | null {
    return this.metricsObj;
  }

  /** The metrics object, made (and prom-client loaded) on first use. */
  private async ensureMetrics(): Promise<QrunnerMetrics> {
    if (this.metricsObj) return this.metricsObj;
    const { QrunnerMetrics } = await import("../metrics/metrics.js");
    this.metricsObj ??= new QrunnerMetrics({
      settings: this.opts.settings,
      workers: this.opts.workers,
      logger: this.opts.logger,
    });
    return this.metricsObj;
  }

  /** Where the listeners are bound right now (for logs and tests). */
  addresses(): { lmtp: ListenAddress | null; metrics: ListenAddress | null; web: ListenAddress | null } {
    return {
      lmtp: this.lmtp?.listener.address ?? null,
      metrics: this.http?.server.address ?? null,
      web: this.web?.server.address ?? null,
    };
  }

  /** A worker's heartbeat, for the metrics; never throws (it runs in the IPC message handler). */
  heartbeat(from: HeartbeatOrigin, hb: Extract<WorkerMessage, { type: "heartbeat" }>): void {
    try {
      this.metricsObj?.heartbeat(from, hb);
    } catch (err) {
      this.log.warn({ err: describeError(err) }, "metrics: bad heartbeat");
    }
  }

  /**
   * Open, move or close the listeners to match `config`. With `strict` (at start) a listener that
   * cannot listen rejects (ListenError); afterwards (a reload) the error is logged and the listener
   * stays closed until a later config change.
   */
  async apply(config: Config, strict: boolean): Promise<void> {
    if (this.closed) return;
    // before the LMTP listener, so that it counts its first outcomes too
    if (config.metrics.listen !== undefined) await this.ensureMetrics();
    const lmtpConfig = config.intake.lmtp;
    // any change of address, socket access or limits reopens the listener
    const lmtpSpec = lmtpConfig && JSON.stringify(lmtpConfig);
    if (this.lmtp && this.lmtp.spec !== lmtpSpec) {
      await this.lmtp.listener.close();
      this.lmtp = null;
    }
    if (lmtpConfig && lmtpSpec !== undefined && !this.lmtp) {
      try {
        const [{ LmtpListener }, { lmtpOptions }] = await Promise.all([
          import("../intake/lmtp.js"),
          import("../intake/lmtp-options.js"),
        ]);
        const listener = await LmtpListener.start({
          ...lmtpOptions(lmtpConfig),
          settings: this.opts.settings,
          logger: this.log.child({ listener: "lmtp" }),
          onOutcome: (outcome, n) => this.metricsObj?.lmtpOutcome(outcome, n),
        });
        if (this.closed) await listener.close();
        else this.lmtp = { spec: lmtpSpec, listener };
      } catch (err) {
        if (strict) throw err;
        this.log.error({ err: describeError(err) }, "LMTP intake not running");
      }
    }
    const httpSpec = config.metrics.listen;
    if (this.http && this.http.spec !== httpSpec) {
      await this.http.server.close();
      this.http = null;
    }
    if (httpSpec !== undefined && !this.http) {
      try {
        const { MetricsServer } = await import("../metrics/server.js");
        const metrics = await this.ensureMetrics();
        const server = await MetricsServer.start({ listen: httpSpec, metrics, logger: this.log });
        if (this.closed) await server.close();
        else this.http = { spec: httpSpec, server };
      } catch (err) {
        if (strict) throw err;
        this.log.error({ err: describeError(err) }, "metrics endpoint not running");
      }
    }
    await this.applyWeb(config, strict);
  }

  /** The web console follows `web.listen` as the others follow theirs; it reads the settings in force. */
  private async applyWeb(config: Config, strict: boolean): Promise<void> {
    const spec = config.web.listen;
    if (this.web && this.web.spec !== spec) {
      await this.web.server.close();
      this.web = null;
    }
    if (spec === undefined || this.web) return;
    try {
      const { WebConsole } = await import("../web/server.js");
      const server = await WebConsole.start({
        listen: spec,
        deps: {
          settings: this.opts.settings,
          // this process is the master: it runs, and its last status write is at most seconds old
          daemon: async () => ({
            running: true,
            status: await readStatus(this.opts.settings().config.state),
          }),
          logger: this.log.child({ listener: "web" }),
        },
      });
      if (this.closed) await server.close();
      else this.web = { spec, server };
    } catch (err) {
      if (strict) throw err;
      this.log.error({ err: describeError(err) }, "web console not running");
    }
  }

  /** Stop taking mail (LMTP transactions in DATA finish first). Safe to call twice. */
  async closeIntake(): Promise<void> {
    const l = this.lmtp;
    this.lmtp = null;
    await l?.listener.close();
  }

  /** Close every listener; no listener is opened afterwards. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    await this.closeIntake();
    const h = this.http;
    this.http = null;
    await h?.server.close();
    const w = this.web;
    this.web = null;
    await w?.server.close();
  }
}
