/**
 * The LMTP listener (RFC 2033) the master runs with `intake: { lmtp: HOST:PORT }` or
 * `unix:/path`: an MTA (Postfix's `lmtp:inet:127.0.0.1:8024` or `lmtp:unix:/run/qrunner/lmtp`)
 * hands over a message once for all its recipients and gets one reply per recipient after DATA:
 *
 *   250 2.6.0  that recipient's list entry in `incoming` is on disk (file and directory fsynced)
 *   550 5.1.1  the address is no list address (refused already at RCPT when it is known then)
 *   451 4.3.0  it cannot be queued now (disk full, read-only, permissions): the MTA keeps it and retries
 *   452        too much mail in flight (the memory budget): the MTA retries
 *   554 5.6.0  the data is not an RFC 5322 message
 *   552        larger than the announced SIZE
 *
 * Storing (one entry per list, ./transaction.ts), routing, checks and the entry's metadata are the
 * same code as `qrunner inject` (./inject.ts); a recipient is judged in ./lmtp-recipient.ts, DATA read
 * within the limits in ./lmtp-data.ts, each connection summed up in the log by ./lmtp-tally.ts. There is no AUTH and no STARTTLS: a TCP listener is
 * meant for loopback, and peers that are not on loopback are refused unless the configured address
 * is itself not a loopback address; a Unix socket is guarded by its mode, owner and group.
 */
import os from "node:os";
import { SMTPServer } from "smtp-server";
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from "smtp-server";
import { Switchboard } from "../queue/switchboard.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { GroupCommitter } from "./group-commit.js";
import { VerpKeys } from "../lists/verp.js";
import { readData, type DataRead } from "./lmtp-data.js";
import { ByteBudget, SessionLimits } from "./lmtp-limits.js";
import { validateRecipient } from "./lmtp-recipient.js";
import { SessionTally } from "./lmtp-tally.js";
import { ListenError, formatListen, isLoopback, parseLmtpListen, type ListenAddress } from "./listen.js";
import { reply, storeTransaction, type LmtpOutcome, type Reply } from "./transaction.js";
import { listenUnix, removeSocket } from "./unix-socket.js";
import { LMTP_DEFAULT_MAX_BUFFERED, LMTP_DEFAULT_MAX_SIZE, type LmtpOptions } from "./lmtp-options.js";

export class LmtpListener {
  private readonly server: SMTPServer;
  private readonly log: Logger;
  private readonly maxSize: number;
  private readonly maxRecipients: number;
  private readonly allowRemote: boolean;
  private readonly limits: SessionLimits;
  private readonly budget: ByteBudget;
  private readonly committer = new GroupCommitter();
  private readonly tally = new SessionTally();
  private queue: { root: string; recycle: boolean; sb: Promise<Switchboard> } | null = null;
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
    this.allowRemote = where.path === undefined && !isLoopback(where.host);
    this.bound = where;
    this.limits = new SessionLimits(opts.maxSessionMs ?? 10 * 60_000, opts.maxTransactions ?? 1000, (id) =>
      this.sendAndClose(id, "session too long; reconnect"),
    );
    this.budget = new ByteBudget(opts.maxBufferedBytes ?? LMTP_DEFAULT_MAX_BUFFERED);
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
      // past it 452 4.5.3 (RFC 5321 4.5.3.1.10): the MTA sends the rest in another transaction
      maxRecipients: this.maxRecipients,
      onConnect: (session, cb) => cb(this.refusal(session)),
      onClose: (session) => {
        this.limits.closed(session.id);
        this.tally.closed(session.id, this.log);
      },
      onMailFrom: (address, session, cb) => cb(this.checkMail(address, session)),
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
      where = parseLmtpListen(opts.listen);
    } catch (err) {
      throw new ListenError("LMTP", opts.listen, { cause: err });
    }
    const l = new LmtpListener(opts, where);
    const net = l.server.server;
    try {
      if (where.path !== undefined) await listenUnix(net, where.path, opts.socket ?? {});
      else
        await new Promise<void>((resolve, reject) => {
          net.once("error", reject);
          l.server.listen(where.port, where.host, () => {
            net.off("error", reject);
            resolve();
          });
        });
    } catch (err) {
      l.limits.close();
      throw new ListenError("LMTP", formatListen(where), { cause: err });
    }
    const addr = net.address();
    if (addr && typeof addr === "object") l.bound = { host: where.host, port: addr.port };
    if (l.allowRemote)
      l.log.warn(
        { address: formatListen(l.bound) },
        "LMTP listens on a non-loopback address: every host that can reach it can queue mail",
      );
    l.log.info({ address: formatListen(l.bound), maxSize: l.maxSize }, "LMTP listening");
    return l;
  }

  /** The address actually bound (the real port when 0 was asked for; `path` for a Unix socket). */
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
      this.limits.close();
      this.tally.clear();
      if (this.where.path !== undefined) await removeSocket(this.where.path);
      const q = this.queue;
      this.queue = null;
      (await q?.sb.catch(() => null))?.close();
      this.log.info({ address: formatListen(this.bound) }, "LMTP closed");
    })();
    return this.closing;
  }

  private refusal(session: SMTPServerSession): Error | null | undefined {
    if (this.closing) return reply(421, "shutting down; try again later");
    // a Unix socket's clients are whoever its mode lets in
    if (this.where.path === undefined && !this.allowRemote && !isLoopback(session.remoteAddress)) {
      this.log.warn({ remote: session.remoteAddress }, "LMTP connection from a non-loopback address refused");
      return reply(554, "loopback clients only");
    }
    this.limits.opened(session.id);
    this.tally.opened(session.id, session.remoteAddress);
    return null;
  }

  /** Send 421 on one connection, which closes it (smtp-server closes after every 421). */
  private sendAndClose(id: string, text: string): void {
    for (const c of this.server.connections)
      if (c.id === id) {
        this.log.info({ session: id, reason: text }, "LMTP connection closed");
        c.send(421, text);
      }
  }

  private checkMail(address: SMTPServerAddress, session: SMTPServerSession): Error | null {
    if (this.closing) return reply(421, "shutting down; try again later");
    const ended = this.limits.beginTransaction(session.id);
    if (ended !== null) {
      this.log.info({ session: session.id, reason: ended }, "LMTP connection closed");
      return reply(421, ended);
    }
    // a size announced with MAIL that the memory budget cannot hold now: retry later
    const args = address.args === false ? {} : (address.args as Record<string, string | undefined>);
    const announced = Number(args["SIZE"] ?? 0);
    if (announced > this.budget.available) return reply(452, "too much mail in flight; try again later");
    return null;
  }

  private checkRecipient(address: SMTPServerAddress, session: SMTPServerSession): Error | null {
    const verdict = validateRecipient(address.address, this.opts.settings(), this.verpKeys);
    if (verdict.accept) return null;
    this.opts.onOutcome?.("unknown", 1);
    this.tally.outcome(session.id, "unknown", 1);
    return reply(verdict.code, verdict.text);
  }

  private onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null, replies?: Reply[]) => void,
  ): void {
    this.inData++;
    this.limits.dataStarted(session.id);
    const data = readData(stream, this.maxSize, this.budget);
    void data.read
      .then((read) => this.store(read, session))
      .catch((err: unknown) => {
        // never expected (storing answers per recipient); whatever it is, the MTA keeps the message
        this.log.error({ err: describeError(err) }, "LMTP delivery failed");
        return { err: reply(451, `cannot queue now: ${describeError(err)}`) };
      })
      .then((answer: { err?: Error; replies?: Reply[] }) => {
        data.release();
        callback(answer.err ?? null, answer.replies);
        if (this.limits.dataEnded(session.id))
          setImmediate(() => this.sendAndClose(session.id, "session too long; reconnect"));
        if (--this.inData === 0) this.drained?.();
      });
  }

  /** The replies to one message's DATA: stored for its recipients, or refused for them all. */
  private async store(
    read: DataRead,
    session: SMTPServerSession,
  ): Promise<{ err?: Error; replies?: Reply[] }> {
    if (read.kind === "error")
      return { err: reply(451, `cannot read the message: ${describeError(read.err)}`) };
    const rcpts = session.envelope.rcptTo.map((r) => r.address);
    const onOutcome = (outcome: LmtpOutcome, n: number): void => {
      this.opts.onOutcome?.(outcome, n);
      this.tally.outcome(session.id, outcome, n);
    };
    this.tally.message(session.id, read.size);
    if (read.kind === "too-big") {
      onOutcome("too-big", rcpts.length);
      return { err: reply(552, `message larger than ${this.maxSize} bytes`) };
    }
    if (read.kind === "over-budget") {
      onOutcome("tempfail", rcpts.length);
      this.log.warn(
        { size: read.size, budget: this.budget.limit },
        "LMTP message refused: too much mail in flight",
      );
      return { err: reply(452, "too much mail in flight; try again later") };
    }
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
    const settings = this.opts.settings();
    const replies = await storeTransaction(
      {
        validate: (r) => validateRecipient(r, settings, this.verpKeys),
        queue: () => this.incoming(settings.config.qfiles, settings.config.queue?.recycle ?? true),
        committer: this.committer,
        log: this.log,
        onOutcome,
      },
      read.input,
      from,
      rcpts,
    );
    return { replies };
  }

  /** The `incoming` Switchboard, opened once (and again after a failure, or when qfiles or queue.recycle changed). */
  private incoming(root: string, recycle: boolean): Promise<Switchboard> {
    if (this.queue?.root !== root || this.queue.recycle !== recycle) {
      const old = this.queue;
      void old?.sb.then((sb) => sb.close()).catch(() => undefined);
      const sb = Switchboard.open({
        root,
        queue: "incoming",
        logger: this.log,
        ...(recycle ? {} : { spares: false as const }),
      });
      const entry = { root, recycle, sb };
      this.queue = entry;
      sb.catch(() => {
        if (this.queue === entry) this.queue = null;
      });
    }
    return this.queue.sb;
  }
}
