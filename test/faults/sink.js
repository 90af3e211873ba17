// A recording SMTP server for the fault suite (plain ESM, no build step): a real `smtp-server` on
// 127.0.0.1 that records every (Message-ID, recipient) it accepts, with the time of acceptance and a
// hash of the body, and misbehaves on demand the ways real relays do: refuse connections (down/up on
// the same port), answer 421 to the greeting, 451 after DATA, drop the connection in the middle of
// DATA, answer slowly. The same faults as test/helpers/smtp-sink.ts, in JS so that `npm run faults`
// runs with plain node.
import { createHash } from "node:crypto";
import { SMTPServer } from "smtp-server";

/** The Message-ID header of a raw message (unfolded, trimmed, brackets kept); "" when absent. */
export function messageIdOf(raw) {
  const text = raw.toString("latin1");
  const end = text.search(/\r?\n\r?\n/);
  const header = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, " ");
  const m = /^message-id[ \t]*:[ \t]*(.*)$/im.exec(header);
  return m?.[1]?.trim() ?? "";
}

/** sha1 of the body (everything after the first empty line), as hex; the decorated header differs. */
export function bodyHash(raw) {
  const lf = raw.indexOf("\n\n");
  const crlf = raw.indexOf("\r\n\r\n");
  let start = raw.length;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) start = crlf + 4;
  else if (lf >= 0) start = lf + 2;
  return createHash("sha1").update(raw.subarray(start)).digest("hex");
}

function smtpError(code, text) {
  return Object.assign(new Error(text), { responseCode: code });
}

/**
 * Start a sink. `name` labels it in reports. Faults (set with setFaults, cleared with clearFaults):
 *   refuse: true      close every connection at once, before the greeting
 *   greeting: 421     answer the connection with this code, then close
 *   data: 451         reply code after the whole message was received
 *   dropInData: true  cut the connection at the first chunk of DATA
 *   dataDelayMs: N    wait N ms after the message before answering it
 */
export async function startSink(name) {
  const host = "127.0.0.1";
  let faults = {};
  let port = 0;
  let server = null;
  let closed = false;
  const sockets = new Set();
  /** "messageId rcpt" -> [ms epoch of each acceptance] */
  const accepted = new Map();
  /** messageId -> body hashes seen */
  const bodies = new Map();
  const stats = {
    connections: 0,
    transactions: 0,
    deliveries: 0,
    refused: 0,
    greeted4xx: 0,
    data4xx: 0,
    dropped: 0,
    delayed: 0,
  };

  const record = (to, raw) => {
    const id = messageIdOf(raw);
    const now = Date.now();
    stats.transactions++;
    const h = bodyHash(raw);
    let seen = bodies.get(id);
    if (!seen) bodies.set(id, (seen = new Set()));
    seen.add(h);
    for (const rcpt of to) {
      const key = `${id} ${rcpt}`;
      const times = accepted.get(key);
      if (times) times.push(now);
      else accepted.set(key, [now]);
      stats.deliveries++;
    }
  };

  const socketOf = (session) => {
    for (const s of sockets) if (s.remotePort === session.remotePort) return s;
    return undefined;
  };

  const onData = (stream, session, callback) => {
    const chunks = [];
    const to = session.envelope.rcptTo.map((r) => r.address);
    let dropped = false;
    stream.on("data", (chunk) => {
      chunks.push(chunk);
      if (faults.dropInData && !dropped) {
        dropped = true;
        stats.dropped++;
        socketOf(session)?.destroy();
      }
    });
    stream.on("end", () => {
      if (dropped) return;
      const raw = Buffer.concat(chunks);
      const finish = () => {
        if (faults.data !== undefined) {
          stats.data4xx++;
          callback(smtpError(faults.data, `${faults.data} temporary failure (fault suite)`));
          return;
        }
        record(to, raw);
        callback(null);
      };
      const delay = faults.dataDelayMs ?? 0;
      if (delay > 0) {
        stats.delayed++;
        setTimeout(finish, delay);
      } else finish();
    });
  };

  const makeServer = () => {
    const s = new SMTPServer({
      logger: false,
      disableReverseLookup: true,
      size: 64 * 1024 * 1024,
      closeTimeout: 100,
      disabledCommands: ["AUTH", "STARTTLS"],
      authOptional: true,
      onConnect(_session, cb) {
        if (faults.greeting !== undefined) {
          stats.greeted4xx++;
          cb(smtpError(faults.greeting, `${faults.greeting} service not available (fault suite)`));
        } else cb();
      },
      onData,
    });
    s.on("error", () => undefined);
    s.server.prependListener("connection", (socket) => {
      stats.connections++;
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      if (faults.refuse) {
        stats.refused++;
        socket.destroy();
      }
    });
    return s;
  };

  const listen = async () => {
    const s = makeServer();
    await new Promise((resolve, reject) => {
      s.server.once("error", reject);
      s.listen(port, host, () => {
        s.server.off("error", reject);
        resolve();
      });
    });
    port = s.server.address().port;
    server = s;
  };

  const stop = async () => {
    const s = server;
    server = null;
    if (!s) return;
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    name,
    host,
    get port() {
      return port;
    },
    get isUp() {
      return server !== null;
    },
    stats,
    accepted,
    bodies,
    get faults() {
      return { ...faults };
    },
    setFaults(f) {
      // a server that starts answering 421 is one that restarted: pooled sessions are gone too
      if (f.greeting !== undefined) for (const socket of sockets) socket.destroy();
      faults = { ...faults, ...f };
      for (const k of Object.keys(faults)) if (faults[k] === undefined) delete faults[k];
    },
    clearFaults() {
      faults = {};
    },
    /** stop listening: connecting is refused until up() */
    down: stop,
    async up() {
      if (!closed && !server) await listen();
    },
    async close() {
      if (closed) return;
      closed = true;
      await stop();
    },
  };
}
