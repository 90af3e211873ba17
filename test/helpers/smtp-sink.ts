/**
 * A recording SMTP server for tests: a real `smtp-server` on 127.0.0.1, port 0, that keeps every message it
 * accepts (raw bytes and envelope) and can be told, at run time, to misbehave the ways real relays do.
 *
 *   const sink = await startSink();
 *   // config: smtp.hosts: [{ host: "127.0.0.1", port: sink.port }]
 *   await sink.waitFor(3, 10_000);          // three recipient deliveries recorded
 *   sink.deliveries().get("<id@x> alice@example.net")  // how often that pair was delivered
 *   sink.setFaults({ rcpt: (a) => (a.startsWith("bad") ? 550 : undefined) });
 *   await sink.down(); await sink.up();     // really stop listening (connect refused), then reopen the same port
 *   await sink.close();
 */
import net from "node:net";
import { SMTPServer } from "smtp-server";
import type { SMTPServerOptions, SMTPServerSession, SMTPServerDataStream } from "smtp-server";

export interface SinkMessage {
  /** envelope sender ("" for the null sender) */
  from: string;
  /** the recipients accepted for this transaction */
  to: string[];
  /** the message exactly as received (dot-unstuffed, terminating CRLF.CRLF removed) */
  raw: Buffer;
  /** the Message-ID header value, trimmed and unfolded, angle brackets kept (e.g. "<a@b>"); "" when absent */
  messageId: string;
  /** the transaction ran over TLS (STARTTLS or implicit) */
  secure: boolean;
  /** BODY= of MAIL FROM: "8bitmime" or "7bit" */
  bodyType: string;
}

export interface SinkFaults {
  /** accept each TCP connection and close it at once, before any greeting */
  refuse?: boolean | undefined;
  /** answer the connection with this code (e.g. 421, 554) instead of 220, then close */
  greeting?: number | undefined;
  /** reply code for MAIL FROM (e.g. 451, 550); undefined accepts */
  mailFrom?: number | undefined;
  /** reply code per RCPT TO address (e.g. 451, 550, 552); undefined accepts */
  rcpt?: ((address: string) => number | undefined) | undefined;
  /** reply code after the whole message was received (e.g. 451, 554); undefined accepts */
  data?: number | ((message: { from: string; to: string[]; raw: Buffer }) => number | undefined) | undefined;
  /** close the connection in the middle of DATA (after the first chunk of the message arrives) */
  dropInData?: boolean | undefined;
  /** wait this long (ms) after the message was received before answering it */
  dataDelayMs?: number | undefined;
}

export interface SinkOptions {
  /** listen on this port (default 0: any free port) */
  port?: number;
  /** require AUTH PLAIN/LOGIN with these credentials (allowed without TLS) */
  auth?: { user: string; pass: string };
  /** a careless server: quote the password it was given in its authentication failure reply */
  echoAuthFailure?: boolean;
  /** offer STARTTLS with this key and certificate (PEM); `true`: smtp-server's built-in self-signed one */
  tls?: { key: string | Buffer; cert: string | Buffer } | true;
  /** TLS from the first byte (needs `tls`) */
  secure?: boolean;
  /** SIZE limit in bytes (default 64 MiB) */
  size?: number;
  /** initial faults */
  faults?: SinkFaults;
}

export interface Sink {
  readonly host: string;
  readonly port: number;
  /** every accepted transaction, in order */
  readonly messages: SinkMessage[];
  /** TCP connections accepted so far (including refused and dropped ones) */
  readonly connections: number;
  /** transactions accepted so far (one per message in `messages`) */
  readonly transactions: number;
  /** successful AUTH attempts so far */
  readonly logins: number;
  /** "messageId recipient" -> times delivered */
  deliveries(): Map<string, number>;
  /** how many recipient deliveries were recorded in total */
  deliveryCount(): number;
  /** merge these faults into the current ones (a key set to undefined clears that fault) */
  setFaults(faults: SinkFaults): void;
  /** clear every fault */
  clearFaults(): void;
  /** forget the recorded messages and counters */
  clear(): void;
  /** resolve once at least n recipient deliveries are recorded; reject after timeoutMs */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  /** stop listening and cut every open connection: connecting is refused until up() */
  down(): Promise<void>;
  /** listen again on the same port */
  up(): Promise<void>;
  /** stop for good; safe to call twice */
  close(): Promise<void>;
}

/** The Message-ID header of a raw message: trimmed, unfolded, brackets kept; "" when there is none. */
export function messageIdOf(raw: Buffer): string {
  const text = raw.toString("latin1");
  const end = text.search(/\r?\n\r?\n/);
  const header = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, " ");
  const m = /^message-id[ \t]*:[ \t]*(.*)$/im.exec(header);
  return m?.[1]?.trim() ?? "";
}

function smtpError(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code });
}

function replyText(code: number, what: string): string {
  return `${code >= 500 ? "permanent" : "temporary"} failure for ${what} (sink fault)`;
}

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const host = "127.0.0.1";
  let faults: SinkFaults = { ...opts.faults };
  const messages: SinkMessage[] = [];
  const counts = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const waiters = new Set<{ n: number; resolve: () => void }>();
  let total = 0;
  let connections = 0;
  let transactions = 0;
  let logins = 0;
  let server: SMTPServer | null = null;
  let port = opts.port ?? 0;
  let closed = false;

  const record = (from: string, to: string[], raw: Buffer, session: SMTPServerSession): void => {
    const messageId = messageIdOf(raw);
    messages.push({
      from,
      to,
      raw,
      messageId,
      secure: session.secure,
      bodyType: session.envelope.bodyType ?? "7bit",
    });
    transactions++;
    for (const rcpt of to) {
      const key = `${messageId} ${rcpt}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      total++;
    }
    for (const w of waiters) {
      if (total >= w.n) {
        waiters.delete(w);
        w.resolve();
      }
    }
  };

  const socketOf = (session: SMTPServerSession): net.Socket | undefined => {
    for (const s of sockets) if (s.remotePort === session.remotePort) return s;
    return undefined;
  };

  const onData = (
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null) => void,
  ): void => {
    const chunks: Buffer[] = [];
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
    const to = session.envelope.rcptTo.map((r) => r.address);
    let dropped = false;
    stream.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      if (faults.dropInData && !dropped) {
        dropped = true;
        socketOf(session)?.destroy();
      }
    });
    stream.on("end", () => {
      if (dropped) return;
      const raw = Buffer.concat(chunks);
      const finish = (): void => {
        const f = faults.data;
        const code = typeof f === "function" ? f({ from, to, raw }) : f;
        if (code !== undefined) {
          callback(smtpError(code, replyText(code, "message")));
          return;
        }
        record(from, to, raw, session);
        callback(null);
      };
      const delay = faults.dataDelayMs ?? 0;
      if (delay > 0) setTimeout(finish, delay);
      else finish();
    });
  };

  const makeServer = (): SMTPServer => {
    const options: SMTPServerOptions = {
      logger: false,
      disableReverseLookup: true,
      size: opts.size ?? 64 * 1024 * 1024,
      closeTimeout: 100,
      disabledCommands: [...(opts.auth ? [] : ["AUTH"]), ...(opts.tls ? [] : ["STARTTLS"])],
      ...(opts.auth ? { allowInsecureAuth: true, authOptional: false } : { authOptional: true }),
      ...(opts.tls ? { secure: opts.secure ?? false } : {}),
      ...(opts.tls && opts.tls !== true ? { key: opts.tls.key, cert: opts.tls.cert } : {}),
      onConnect(_session, cb) {
        const code = faults.greeting;
        if (code !== undefined) cb(smtpError(code, replyText(code, "this connection")));
        else cb();
      },
      onAuth(auth, _session, cb) {
        if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) {
          logins++;
          cb(null, { user: auth.username });
        } else {
          const echo = opts.echoAuthFailure
            ? ` for ${auth.username ?? ""} with password ${auth.password ?? ""}`
            : "";
          cb(smtpError(535, `5.7.8 authentication failed${echo}`));
        }
      },
      onMailFrom(_address, _session, cb) {
        const code = faults.mailFrom;
        cb(code !== undefined ? smtpError(code, replyText(code, "sender")) : null);
      },
      onRcptTo(address, _session, cb) {
        const code = faults.rcpt?.(address.address);
        cb(code !== undefined ? smtpError(code, replyText(code, address.address)) : null);
      },
      onData,
    };
    const s = new SMTPServer(options);
    // smtp-server logs and survives client errors; keep a listener so none is ever unhandled
    s.on("error", () => undefined);
    // prepend: a refused connection is cut before smtp-server even greets it
    s.server.prependListener("connection", (socket: net.Socket) => {
      connections++;
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      if (faults.refuse) socket.destroy();
    });
    return s;
  };

  const listen = async (): Promise<void> => {
    const s = makeServer();
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.listen(port, host, () => {
        s.server.off("error", reject);
        resolve();
      });
    });
    const addr = s.server.address();
    if (addr && typeof addr === "object") port = addr.port;
    server = s;
  };

  const stop = async (): Promise<void> => {
    const s = server;
    server = null;
    if (!s) return;
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();

  return {
    host,
    get port() {
      return port;
    },
    messages,
    get connections() {
      return connections;
    },
    get transactions() {
      return transactions;
    },
    get logins() {
      return logins;
    },
    deliveries: () => new Map(counts),
    deliveryCount: () => total,
    setFaults(f) {
      faults = { ...faults, ...f };
    },
    clearFaults() {
      faults = {};
    },
    clear() {
      messages.length = 0;
      counts.clear();
      total = 0;
      transactions = 0;
      connections = 0;
      logins = 0;
    },
    waitFor(n, timeoutMs = 10_000) {
      if (total >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const w = {
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`smtp sink: ${total} of ${n} recipient deliveries after ${timeoutMs}ms`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    down: stop,
    async up() {
      if (closed) throw new Error("smtp sink: up() after close()");
      if (!server) await listen();
    },
    async close() {
      if (closed) return;
      closed = true;
      await stop();
    },
  };
}
