/**
 * The HTTP endpoint Prometheus scrapes: `GET /metrics` (text exposition 0.0.4) on `metrics.listen`.
 * Anything else is 404. Like the LMTP listener it is meant for loopback: peers that are not on
 * loopback are refused unless the configured address is itself not a loopback address.
 */
import http from "node:http";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";
import {
  ListenError,
  formatListen,
  isLoopback,
  listenOn,
  parseListen,
  type ListenAddress,
} from "../intake/listen.js";
import type { QrunnerMetrics } from "./metrics.js";

export interface MetricsServerOptions {
  /** `metrics.listen`: HOST:PORT (port 0: a free port the system picks, for tests) */
  listen: string;
  metrics: QrunnerMetrics;
  logger: Logger;
}

export class MetricsServer {
  private readonly server: http.Server;
  private bound: ListenAddress;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly opts: MetricsServerOptions,
    where: ListenAddress,
  ) {
    this.bound = where;
    const allowRemote = !isLoopback(where.host);
    this.server = http.createServer((req, res) => {
      if (!allowRemote && !isLoopback(req.socket.remoteAddress ?? "")) {
        res.writeHead(403, { "content-type": "text/plain" }).end("loopback clients only\n");
        return;
      }
      const url = (req.url ?? "/").split("?")[0];
      if ((req.method !== "GET" && req.method !== "HEAD") || url !== "/metrics") {
        res.writeHead(url === "/metrics" ? 405 : 404, { "content-type": "text/plain" }).end("see /metrics\n");
        return;
      }
      this.opts.metrics.exposition().then(
        ({ contentType, body }) => {
          res.writeHead(200, { "content-type": contentType });
          res.end(req.method === "HEAD" ? undefined : body);
        },
        (err: unknown) => {
          this.opts.logger.error({ err: describeError(err) }, "metrics: scrape failed");
          res.writeHead(500, { "content-type": "text/plain" }).end(`scrape failed: ${describeError(err)}\n`);
        },
      );
    });
    // a scraper that stalls must not hold a socket for long
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
    this.server.keepAliveTimeout = 5_000;
  }

  /** Listen on `opts.listen`; rejects with ListenError when the address cannot be taken. */
  static async start(opts: MetricsServerOptions): Promise<MetricsServer> {
    let where: ListenAddress;
    try {
      where = parseListen(opts.listen);
    } catch (err) {
      throw new ListenError("metrics", opts.listen, { cause: err });
    }
    const s = new MetricsServer(opts, where);
    s.bound = await listenOn(s.server, "metrics", opts.listen);
    if (allowsRemote(where))
      opts.logger.warn({ address: formatListen(s.bound) }, "metrics listen on a non-loopback address");
    opts.logger.info({ address: formatListen(s.bound) }, "metrics listening");
    return s;
  }

  get address(): ListenAddress {
    return this.bound;
  }

  /** Stop listening and close idle keep-alive connections. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
    return this.closing;
  }
}

function allowsRemote(a: ListenAddress): boolean {
  return !isLoopback(a.host);
}
