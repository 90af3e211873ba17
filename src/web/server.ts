/**
 * The web console's HTTP server (node:http): `WebConsole.start` listens on `web.listen`, and every
 * request goes to the routes (routes.ts) with the sessions and login limiter of this server. Like the
 * metrics endpoint it is meant for loopback: when it listens on a loopback address, peers that are not
 * on loopback are refused. TLS is a reverse proxy's job (docs/web.md).
 */
import http from "node:http";
import { describeError } from "../util/errors.js";
import { formatListen, isLoopback, listenOn, type ListenAddress } from "../intake/listen.js";
import type { ConsoleDeps } from "./deps.js";
import { BodyTooLargeError, sendText } from "./http.js";
import { LoginLimiter, type RateLimitOptions } from "./ratelimit.js";
import { Routes } from "./routes.js";
import { SessionStore, type SessionOptions } from "./sessions.js";

export interface WebConsoleOptions {
  /** HOST:PORT (port 0: a free port, for tests) */
  listen: string;
  deps: ConsoleDeps;
  sessions?: SessionOptions;
  rateLimit?: RateLimitOptions;
}

export class WebConsole {
  private readonly server: http.Server;
  private bound: ListenAddress = { host: "", port: 0 };
  private closing: Promise<void> | null = null;

  private constructor(opts: WebConsoleOptions) {
    const log = opts.deps.logger;
    const routes = new Routes(opts.deps, new SessionStore(opts.sessions), new LoginLimiter(opts.rateLimit));
    this.server = http.createServer((req, res) => {
      // on a loopback address, only loopback peers (a reverse proxy on this host, a browser here)
      if (isLoopback(this.bound.host) && !isLoopback(req.socket.remoteAddress ?? "")) {
        sendText(res, 403, "loopback clients only");
        return;
      }
      routes.handle(req, res).catch((err: unknown) => {
        if (err instanceof BodyTooLargeError) {
          if (!res.headersSent) sendText(res, 413, err.message);
          return;
        }
        log.error({ err: describeError(err), url: req.url }, "web: request failed");
        if (!res.headersSent) sendText(res, 500, "internal error (logged)");
        else res.destroy();
      });
    });
    // a client that stalls must not hold a socket for long
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
    this.server.keepAliveTimeout = 5_000;
    this.server.maxHeadersCount = 100;
  }

  /** Listen on `opts.listen`; rejects with ListenError when the address cannot be taken. */
  static async start(opts: WebConsoleOptions): Promise<WebConsole> {
    const c = new WebConsole(opts);
    c.bound = await listenOn(c.server, "web", opts.listen);
    const log = opts.deps.logger;
    if (!isLoopback(c.bound.host))
      log.warn({ address: formatListen(c.bound) }, "web console on a non-loopback address: put TLS in front");
    log.info({ address: formatListen(c.bound) }, "web console listening");
    return c;
  }

  get address(): ListenAddress {
    return this.bound;
  }

  /** Stop listening; open connections (a browser's keep-alive) are closed. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}
