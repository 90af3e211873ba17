/**
 * Every place qrunner leans on nodemailer beyond its documented API, in one module, so that a
 * nodemailer upgrade that changes any of it fails one contract test (test/delivery/nodemailer-contract)
 * instead of delivery:
 *
 * - `sendPrepared` hands a queue entry's raw bytes and envelope straight to the pool behind
 *   `createTransport({ pool: true })` (its `transporter` property and `send(mail, callback)`), with a
 *   minimal mail object: `sendMail` would first build a MailMessage, compose a MIME tree around the raw
 *   bytes and run every address through its header parser (which splits a quoted local part at its
 *   commas), about 0.1 ms of CPU per message a queue entry does not need.
 * - the pool options `getSocket` (our own socket, with Nagle off) and `maxRequeues` (nodemailer issue
 *   #1105), which the type declarations lack.
 */
import type net from "node:net";
import { createRequire } from "node:module";
import type { Transporter } from "nodemailer";
import type SMTPPool from "nodemailer/lib/smtp-pool/index.js";
import { QrunnerError } from "../util/errors.js";

/**
 * nodemailer, loaded when the first transport is made: a worker that never sends over SMTP (and an
 * idle one before its first delivery) does not carry its 80 modules, about 2.5 MB.
 */
export function loadNodemailer(): typeof import("nodemailer") {
  return createRequire(import.meta.url)("nodemailer") as typeof import("nodemailer");
}

/** The socket a pool connection uses, handed over by `getSocket`. */
export type SocketProvider = (
  options: unknown,
  callback: (err: Error | null, socketOptions?: { connection: net.Socket }) => void,
) => void;

/** nodemailer's pool accepts maxRequeues and getSocket, which its type declarations lack. */
export type PoolOptions = SMTPPool.Options & { maxRequeues: number; getSocket: SocketProvider };

export type SmtpPool = Transporter<SMTPPool.SentMessageInfo>;

/** A pooled SMTP transport with the options above. */
export function createPool(options: PoolOptions): SmtpPool {
  return loadNodemailer().createTransport(options);
}

/** The parts of a nodemailer mail object that its SMTP pool reads (smtp-pool, pool-resource). */
interface PreparedMail {
  data: Record<string, never>;
  message: {
    getEnvelope(): { from: string | false; to: string[]; size: number; use8BitMime: boolean };
    messageId(): string;
    getHeader(name: string): string | undefined;
    createReadStream(): Buffer;
  };
}

/** nodemailer's SMTP pool (the transporter behind createTransport({ pool: true })). */
interface PreparedPool {
  /** false when the pool is closed (the callback is then never called) */
  send(mail: PreparedMail, callback: (err: Error | null, info?: SMTPPool.SentMessageInfo) => void): boolean;
}

/** Thrown when the pool is not what this module expects: nodemailer changed under us. */
export class NodemailerContractError extends QrunnerError {
  constructor(message: string) {
    super("ENODEMAILER_CONTRACT", message);
  }
}

function preparedPool(mailer: SmtpPool): PreparedPool {
  const pool = (mailer as unknown as { transporter?: Partial<PreparedPool> }).transporter;
  if (typeof pool?.send !== "function")
    throw new NodemailerContractError(
      "nodemailer's pooled transport has no transporter.send: src/delivery/nodemailer-adapter.ts needs updating",
    );
  return pool as PreparedPool;
}

export interface PreparedEnvelope {
  /** "" is the null sender (MAIL FROM:<>) */
  from: string;
  to: readonly string[];
  size: number;
  use8BitMime: boolean;
}

/**
 * Send `raw` unchanged with this envelope over the pool. Rejects with the pool's error (a connection
 * or protocol failure, or a rejection of every recipient), or when the transport is closed.
 */
export function sendPrepared(
  mailer: SmtpPool,
  env: PreparedEnvelope,
  raw: Buffer,
  closedText: string,
): Promise<SMTPPool.SentMessageInfo> {
  const pool = preparedPool(mailer);
  return new Promise((resolve, reject) => {
    const mail: PreparedMail = {
      data: {},
      message: {
        // a fresh object per call: the connection writes its state into it, and the pool may
        // send the same mail again on a new connection
        getEnvelope: () => ({ ...env, from: env.from === "" ? false : env.from, to: [...env.to] }),
        messageId: () => "",
        getHeader: () => undefined,
        createReadStream: () => raw,
      },
    };
    const queued = pool.send(mail, (err, info) =>
      err || !info ? reject(err ?? new Error("no reply")) : resolve(info),
    );
    if (!queued) reject(new Error(closedText));
  });
}
