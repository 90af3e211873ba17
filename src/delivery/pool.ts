/**
 * nodemailer's SMTP connection pool as a HostTransport uses it: loaded on first use, configured from a
 * host's config, connected through sockets with Nagle's algorithm off. Separate from transport.ts,
 * which checks a host's credentials and CA file and turns each transaction into per-recipient
 * results: these are the pool's settings and plumbing, where nodemailer's quirks are worked around.
 */
import net from "node:net";
import type { FallbackHostConfig } from "../config/schema.js";
import type { PoolOptions, SocketProvider } from "./nodemailer-adapter.js";

/**
 * Sockets with Nagle's algorithm off. nodemailer writes the end of DATA (`\r\n.\r\n`) as a small
 * segment of its own; with Nagle on, it waits for the ACK of the body, which the server delays by
 * up to 40 ms: one transaction per 40 ms per connection. The socket is handed over while it connects,
 * so nodemailer's own handlers still see ECONNREFUSED and the like as connection errors.
 */
function noDelaySocket(host: string, port: number, connectTimeout: number): SocketProvider {
  return (_options, callback) => {
    const connection = net.connect({ host, port });
    connection.setNoDelay(true);
    // nodemailer's own connect timer stops once it has the socket; keep connect_timeout ourselves
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`connect ETIMEDOUT ${host}:${port} (connect_timeout)`), {
        code: "ETIMEDOUT",
        syscall: "connect",
      });
      connection.destroy(err);
    }, connectTimeout);
    timer.unref();
    connection.once("connect", () => clearTimeout(timer));
    connection.once("close", () => clearTimeout(timer));
    callback(null, { connection });
  };
}

/**
 * The pool options for one host, its password (`auth`) and CA certificates (`ca`) already read (see
 * the HostTransport constructor); `helo` is the name sent in EHLO, default the machine's hostname.
 */
export function poolOptions(
  config: FallbackHostConfig,
  auth: { user: string; pass: string } | undefined,
  ca: Buffer | undefined,
  helo: string | undefined,
): PoolOptions {
  return {
    pool: true,
    getSocket: noDelaySocket(config.host, config.port, config.connect_timeout),
    host: config.host,
    port: config.port,
    secure: config.secure,
    maxConnections: config.pool_size,
    // reconnect now and then so a long-lived connection to a load-balanced relay cannot go stale
    // (every 1,000 messages: a reconnection costs a handshake, EHLO and maybe STARTTLS and AUTH)
    maxMessages: 1000,
    // the pool would requeue a message without limit when a connection closes under it (nodemailer
    // issue #1105); allow one retry on a fresh connection (an idle one closed by the server), no more
    maxRequeues: 1,
    connectionTimeout: config.connect_timeout,
    greetingTimeout: config.timeout,
    socketTimeout: config.timeout,
    // with credentials configured, never fall back to sending unauthenticated: a relay would answer
    // every RCPT "relay access denied", a permanent failure for mail that only needed a login
    ...(auth ? { auth, forceAuth: true } : {}),
    ...(config.starttls === "require" ? { requireTLS: true } : {}),
    ...(config.starttls === "never" ? { ignoreTLS: true } : {}),
    tls: { rejectUnauthorized: config.tls_reject_unauthorized, ...(ca ? { ca } : {}) },
    ...(helo !== undefined ? { name: helo } : {}),
    logger: false,
    debug: false,
  };
}
