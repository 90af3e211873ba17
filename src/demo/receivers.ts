/**
 * Loopback SMTP receivers for the demo: real `smtp-server` instances on 127.0.0.1 that accept every
 * message, hand each (Message-ID, recipients) to a callback, and can be taken down (connections
 * refused, open ones cut) and brought back on the same port, the way a relay goes away and returns.
 */
import type net from "node:net";
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import { QrunnerError } from "../util/errors.js";

/** A receiver could not listen (no free port, loopback unavailable). */
export class ReceiverError extends QrunnerError {
  constructor(name: string, options?: { cause?: unknown }) {
    const why = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super("EDEMO_RECEIVER", `demo receiver ${name} cannot listen on 127.0.0.1${why}`, options);
  }
}

export interface Receiver {
  readonly name: string;
  readonly port: number;
  readonly isUp: boolean;
  /** transactions and recipient deliveries accepted so far */
  readonly transactions: number;
  readonly recipients: number;
  /** stop listening and cut open connections: connecting is refused until up() */
  down(): Promise<void>;
  /** listen again on the same port */
  up(): Promise<void>;
  /** stop for good; safe to call twice */
  close(): Promise<void>;
}

export type OnDelivery = (receiver: string, messageId: string, recipients: readonly string[]) => void;

/** The Message-ID header of a raw message, brackets kept; "" when there is none. */
export function messageIdOf(raw: Buffer): string {
  const text = raw.toString("latin1");
  const end = text.search(/\r?\n\r?\n/);
  const header = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, " ");
  return /^message-id[ \t]*:(.*)$/im.exec(header)?.[1]?.trim() ?? "";
}

export async function startReceiver(name: string, onDelivery: OnDelivery): Promise<Receiver> {
  const sockets = new Set<net.Socket>();
  let server: SMTPServer | null = null;
  let port = 0;
  let closed = false;
  let transactions = 0;
  let recipients = 0;

  const onData = (
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    done: (err?: Error | null) => void,
  ): void => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const to = session.envelope.rcptTo.map((r) => r.address);
      transactions++;
      recipients += to.length;
      onDelivery(name, messageIdOf(Buffer.concat(chunks)), to);
      done(null);
    });
  };

  const listen = async (): Promise<void> => {
    const s = new SMTPServer({
      logger: false,
      disableReverseLookup: true,
      authOptional: true,
      disabledCommands: ["AUTH", "STARTTLS"],
      size: 64 * 1024 * 1024,
      closeTimeout: 100,
      onData,
    });
    // smtp-server reports client errors (a cut connection) as events: nothing to do about them here
    s.on("error", () => undefined);
    s.server.prependListener("connection", (socket: net.Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        s.server.once("error", reject);
        s.listen(port, "127.0.0.1", () => {
          s.server.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      throw new ReceiverError(name, { cause: err });
    }
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
    name,
    get port() {
      return port;
    },
    get isUp() {
      return server !== null;
    },
    get transactions() {
      return transactions;
    },
    get recipients() {
      return recipients;
    },
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
