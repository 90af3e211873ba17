/**
 * The LMTP listener (RFC 2033) the master runs with `intake: { lmtp: HOST:PORT }`: an MTA (Postfix's
 * `lmtp:inet:127.0.0.1:8024`) hands over a message once for all its recipients and gets one reply per
 * recipient after DATA:
 *
 *   250 2.6.0  that recipient's `incoming` entry is on disk (file and directory fsynced)
 *   550 5.1.1  the address is no list address (refused already at RCPT when it is known then)
 *   451 4.3.0  it cannot be queued now (disk full, read-only, permissions): the MTA keeps it and retries
 *   554 5.6.0  the data is not an RFC 5322 message
 *   552        larger than the announced SIZE
 *
 * Routing, checks and the entry's metadata are the same code as `qrunner inject` (./inject.ts). There
 * is no AUTH and no STARTTLS: the listener is meant for loopback, and peers that are not on loopback
 * are refused unless the configured address is itself not a loopback address.
 */
import os from "node:os";
import { SMTPServer } from "smtp-server";
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from "smtp-server";
import type { ListConfig } from "../lists/schema.js";
import { Switchboard } from "../queue/switchboard.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { VerpKeys } from "../lists/verp.js";
import { InjectError, incomingMeta, prepareMessage, routeAddress, verpProblem } from "./inject.js";
import { ListenError, formatListen, isLoopback, parseListen, type ListenAddress } from "./listen.js";

/** What happened to one recipient, for the metrics. */
export type LmtpOutcome = "queued" | "unknown" | "invalid" | "tempfail" | "too-big";

/** The settings in force (a getter: the master replaces them on reload). */
export interface IntakeSettings {
  readonly config: { readonly qfiles: string; readonly state: string };
  readonly lists: ReadonlyMap<string, ListConfig>;
}

export interface LmtpOptions {
  /** `intake.lmtp`: HOST:PORT (port 0: a free port the system picks, for tests) */
  listen: string;
  settings: () => IntakeSettings;
  logger: Logger;
  /** the SIZE announced and enforced, bytes (default 50 MiB) */
  maxSize?: number;
  /** recipients per transaction (default 1000); more get 452 at RCPT and are retried by the MTA */
  maxRecipients?: number;
  /** idle time before a connection is closed, ms (default 5 min, RFC 5321's server timeout) */
  socketTimeoutMs?: number;
  /** connections at once (default 50; Postfix opens up to its destination concurrency limit, 20) */
  maxClients?: number;
  /** on close, how long transactions in DATA may take to finish, ms (default 10 s) */
  closeGraceMs?: number;
  onOutcome?: (outcome: LmtpOutcome, recipients: number) => void;
}

export const LMTP_DEFAULT_MAX_SIZE = 50 * 1024 * 1024;

type Reply = string | (Error & { responseCode: number });

function reply(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code });
}

export class LmtpListener {
  private readonly server: SMTPServer;
  private readonly log: Logger;
  private readonly maxSize: number;
  private readonly maxRecipients: number;
  private readonly allowRemote: boolean;
  private queue: { root: string; sb: Promise<Switchboard> } | null = null;
  private inData = 0;
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private bound: ListenAddress;
  private readonly verpKeys = new VerpKeys();

  private constructor(
    private readonly opts: LmtpOptions,
    private readonly where: ListenAddress,
  ) {
    this.log = opts.logger;
    this.maxSize = opts.maxSize ?? LMTP_DEFAULT_MAX_SIZE;
    this.maxRecipients = opts.maxRecipients ?? 1000;
    this.allowRemote = !isLoopback(where.host);
    this.bound = where;
    this.server = new SMTPServer({
      lmtp: true,
      name: os.hostname(),
      banner: "qrunner",
      size: this.maxSize,
      authOptional: true,
      disabledCommands: ["AUTH", "STARTTLS"],
      disableReverseLookup: true,
      // RFC 3463 codes (550 5.1.1, 451 4.3.0): what an MTA puts in its bounce or log
      hideENHANCEDSTATUSCODES: false,
      logger: false,
      socketTimeout: opts.socketTimeoutMs ?? 5 * 60_000,
      // transactions in DATA are waited for in close(); what is left then is idle
      closeTimeout: 200,
      maxClients: opts.maxClients ?? 50,
      onConnect: (session, cb) => cb(this.refusal(session)),
      onMailFrom: (_address, _session, cb) =>
        cb(this.closing ? reply(421, "shutting down; try again later") : null),
      onRcptTo: (address, session, cb) => cb(this.checkRecipient(address, session)),
      onData: (stream, session, cb) => this.onData(stream, session, cb),
    });
    // smtp-server reports client errors (resets, timeouts) here; they concern one connection only
    this.server.on("error", (err) => this.log.debug({ err: describeError(err) }, "lmtp connection error"));
  }

  /** Listen on `opts.listen`; rejects with ListenError when the address cannot be taken. */
  static async start(opts: LmtpOptions): Promise<LmtpListener> {
    let where: ListenAddress;
    try {
      where = parseListen(opts.listen);
    } catch (err) {
      throw new ListenError("LMTP", opts.listen, { cause: err });
    }
    const l = new LmtpListener(opts, where);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(new ListenError("LMTP", formatListen(where), { cause: err }));
      l.server.server.once("error", onError);
      l.server.listen(where.port, where.host, () => {
        l.server.server.off("error", onError);
        resolve();
      });
    });
    const addr = l.server.server.address();
    if (addr && typeof addr === "object") l.bound = { host: where.host, port: addr.port };
    if (l.allowRemote)
      l.log.warn(
        { address: formatListen(l.bound) },
        "LMTP listens on a non-loopback address: every host that can reach it can queue mail",
      );
    l.log.info({ address: formatListen(l.bound), maxSize: l.maxSize }, "LMTP listening");
    return l;
  }

  /** The address actually bound (the real port when 0 was asked for). */
  get address(): ListenAddress {
    return this.bound;
  }

  /**
   * Stop taking connections, let transactions in DATA finish (up to closeGraceMs) so that no
   * message is cut after it was queued, then close what is left. Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.inData > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.opts.closeGraceMs ?? 10_000);
          this.drained = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      const q = this.queue;
      this.queue = null;
      (await q?.sb.catch(() => null))?.close();
      this.log.info({ address: formatListen(this.bound) }, "LMTP closed");
    })();
    return this.closing;
  }

  private refusal(session: SMTPServerSession): Error | null | undefined {
    if (this.closing) return reply(421, "shutting down; try again later");
    if (!this.allowRemote && !isLoopback(session.remoteAddress)) {
      this.log.warn({ remote: session.remoteAddress }, "LMTP connection from a non-loopback address refused");
      return reply(554, "loopback clients only");
    }
    return null;
  }

  private checkRecipient(address: SMTPServerAddress, session: SMTPServerSession): Error | null {
    if (session.envelope.rcptTo.length >= this.maxRecipients)
      return reply(452, `too many recipients (at most ${this.maxRecipients} per transaction)`);
    const settings = this.opts.settings();
    const routed = routeAddress(address.address, settings.lists);
    if (routed) {
      let refusal: string | null;
      try {
        refusal = verpProblem(routed, settings.config.state, this.verpKeys);
      } catch (err) {
        return reply(451, `cannot check the VERP address now: ${describeError(err)}`);
      }
      if (refusal === null) return null;
      this.opts.onOutcome?.("unknown", 1);
      return reply(550, refusal);
    }
    this.opts.onOutcome?.("unknown", 1);
    return reply(550, `no such list or address: ${address.address}`);
  }

  private onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null, replies?: Reply[]) => void,
  ): void {
    this.inData++;
    let answered = false;
    const done = (err: Error | null, replies?: Reply[]): void => {
      // a stream error may be followed by its end: answer once
      if (answered) return;
      answered = true;
      callback(err, replies);
      if (--this.inData === 0) this.drained?.();
    };
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      // past the limit smtp-server answers 552 for every recipient itself: keep nothing more
      if (size <= this.maxSize) chunks.push(chunk);
    });
    stream.once("error", (err) => done(reply(451, `cannot read the message: ${describeError(err)}`)));
    stream.once("end", () => {
      const rcpts = session.envelope.rcptTo.map((r) => r.address);
      if (stream.sizeExceeded || size > this.maxSize) {
        this.opts.onOutcome?.("too-big", rcpts.length);
        done(reply(552, `message larger than ${this.maxSize} bytes`));
        return;
      }
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
      this.deliver(Buffer.concat(chunks, size), from, rcpts).then(
        (replies) => done(null, replies),
        (err: unknown) => {
          // never expected (deliver answers per recipient); whatever it is, the MTA keeps the message
          this.log.error({ err: describeError(err) }, "LMTP delivery failed");
          done(reply(451, `cannot queue now: ${describeError(err)}`));
        },
      );
    });
  }

  /** One reply per recipient, in RCPT order; 250 only once that recipient's entry is durable. */
  private async deliver(input: Buffer, from: string, rcpts: readonly string[]): Promise<Reply[]> {
    const started = Date.now();
    let prepared;
    try {
      prepared = prepareMessage(input, from);
    } catch (err) {
      if (!(err instanceof InjectError)) throw err;
      this.opts.onOutcome?.("invalid", rcpts.length);
      this.log.warn({ from, recipients: rcpts.length, reason: err.message }, "LMTP message refused");
      return rcpts.map(() => reply(554, err.message));
    }
    const settings = this.opts.settings();
    const routed = rcpts.map((r) => routeAddress(r, settings.lists));
    let queue: Switchboard | null = null;
    let queueError = "";
    try {
      queue = await this.incoming(settings.config.qfiles);
    } catch (err) {
      queueError = describeError(err);
    }
    const results = await Promise.allSettled(
      routed.map((r) => {
        if (!r) return Promise.resolve(null);
        if (!queue) return Promise.reject(new Error(queueError));
        return queue.enqueue(prepared.raw, incomingMeta(prepared.sender, r));
      }),
    );
    const ids: string[] = [];
    const replies = results.map((res, i): Reply => {
      const rcpt = rcpts[i] ?? "";
      if (res.status === "rejected") {
        this.opts.onOutcome?.("tempfail", 1);
        return reply(451, `cannot queue now: ${describeError(res.reason)}`);
      }
      if (res.value === null) {
        // the list went away between RCPT and DATA (a config edit)
        this.opts.onOutcome?.("unknown", 1);
        return reply(550, `no such list or address: ${rcpt}`);
      }
      this.opts.onOutcome?.("queued", 1);
      ids.push(res.value);
      return `queued as ${res.value}`;
    });
    const failed = replies.length - ids.length;
    const entry = {
      from,
      recipients: rcpts.length,
      queued: ids,
      size: prepared.raw.length,
      ms: Date.now() - started,
    };
    if (failed > 0)
      this.log.warn({ ...entry, failed, error: queueError || undefined }, "LMTP message partly refused");
    else this.log.info(entry, "LMTP message queued");
    return replies;
  }

  /** The `incoming` Switchboard, opened once (and again after a failure, or when qfiles changed). */
  private incoming(root: string): Promise<Switchboard> {
    if (this.queue?.root !== root) {
      const old = this.queue;
      void old?.sb.then((sb) => sb.close()).catch(() => undefined);
      const sb = Switchboard.open({ root, queue: "incoming", logger: this.log });
      const entry = { root, sb };
      this.queue = entry;
      sb.catch(() => {
        if (this.queue === entry) this.queue = null;
      });
    }
    return this.queue.sb;
  }
}
