/**
 * One SMTP host: a nodemailer connection pool (several messages per connection, up to `pool_size`
 * connections) that sends a queue entry's raw bytes unchanged with an explicit envelope, and reports
 * what happened to each recipient. How the pool is configured and connected is in pool.ts.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type SMTPPool from "nodemailer/lib/smtp-pool/index.js";
import type { Logger } from "../util/log.js";
import type { FallbackHostConfig } from "../config/schema.js";
import { CaFileError, MissingSecretError } from "./errors.js";
import { hostId } from "./hosts.js";
import { BAD_ADDRESS, hasEightBit, wireAddress } from "./envelope.js";
import { hostErrorOf, resultOfError, resultOfInfo, mergeResults } from "./outcome.js";
import type { HostError, RecipientFailure, SendResult } from "./outcome.js";
import { createPool, sendPrepared, type PoolOptions, type SmtpPool } from "./nodemailer-adapter.js";
import { poolOptions } from "./pool.js";

/** A primary or fallback host (fallbacks have no weight). */
export type HostConfig = FallbackHostConfig & { weight?: number };

export interface Envelope {
  /** envelope sender; "" is the null sender (MAIL FROM:<>) */
  from: string;
  to: string[];
}

export interface HostTransportOptions {
  /** name sent in EHLO (config `smtp.helo`); default the machine's hostname */
  helo?: string;
  logger?: Logger;
  /** where `auth.pass_env` (and $CREDENTIALS_DIRECTORY for `auth.pass_credential`) is looked up; default process.env */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * The password from `pass_env`'s variable, or from the systemd credential `pass_credential`
 * ($CREDENTIALS_DIRECTORY/NAME, one trailing newline dropped). Throws MissingSecretError.
 */
function readPassword(
  host: string,
  auth: { pass_env?: string | undefined; pass_credential?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
): string {
  if (auth.pass_credential !== undefined) {
    const name = auth.pass_credential;
    const dir = env["CREDENTIALS_DIRECTORY"];
    if (dir === undefined || dir === "")
      throw new MissingSecretError(host, name, { why: "cannot be read: $CREDENTIALS_DIRECTORY is not set" });
    let pass: string;
    try {
      pass = readFileSync(path.join(dir, name), "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      throw new MissingSecretError(host, name, {
        why: `cannot be read from ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
        cause: err,
      });
    }
    if (pass === "") throw new MissingSecretError(host, name, { why: "is empty" });
    return pass;
  }
  const variable = auth.pass_env ?? "";
  const pass = env[variable];
  if (pass === undefined || pass === "") throw new MissingSecretError(host, variable);
  return pass;
}

export class HostTransport {
  /** the host's identity in logs, status and health records */
  readonly id: string;
  /** connections kept open to this host; also how many transactions deliverBatched runs at once */
  readonly poolSize: number;
  readonly #options: PoolOptions;
  #pool: SmtpPool | undefined;
  /** the password and its base64 forms, scrubbed from every message we hand out */
  readonly #secrets: string[];
  readonly #logger: Logger | undefined;
  #closed = false;

  /** Throws MissingSecretError when `auth.pass_env` is unset, CaFileError when `ca` cannot be read. */
  constructor(config: HostConfig, opts: HostTransportOptions = {}) {
    this.id = hostId(config);
    this.poolSize = config.pool_size;
    this.#logger = opts.logger;
    const env = opts.env ?? process.env;

    let auth: { user: string; pass: string } | undefined;
    this.#secrets = [];
    if (config.auth) {
      const pass = readPassword(this.id, config.auth, env);
      auth = { user: config.auth.user, pass };
      const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
      this.#secrets = [pass, b64(pass), b64(`\0${config.auth.user}\0${pass}`)].sort(
        (a, b) => b.length - a.length,
      );
    }

    let ca: Buffer | undefined;
    if (config.ca !== undefined) {
      try {
        ca = readFileSync(config.ca);
      } catch (err) {
        throw new CaFileError(this.id, config.ca, { cause: err });
      }
    }

    const options = poolOptions(config, auth, ca, opts.helo);
    // checked now (a missing secret or CA file stops the worker at start), connected on first use
    this.#options = options;
  }

  /** The connection pool, made on first use (nodemailer loads with it). */
  get #mailer(): SmtpPool {
    this.#pool ??= createPool(this.#options);
    return this.#pool;
  }

  /**
   * One SMTP transaction: MAIL FROM, a RCPT per recipient, DATA with the bytes unchanged. Never rejects;
   * every recipient ends up in `accepted` or `failed`. At most `max_recipients` recipients: split larger
   * envelopes with deliverBatched.
   */
  async send(envelope: Envelope, raw: Buffer): Promise<SendResult> {
    const recipients = [...new Set(envelope.to)];
    const invalid: RecipientFailure[] = [];
    const valid: string[] = [];
    for (const r of recipients) {
      if (r === "" || BAD_ADDRESS.test(r)) {
        invalid.push({
          recipient: r,
          kind: "permanent",
          message: `invalid recipient address ${JSON.stringify(r)}`,
        });
      } else valid.push(r);
    }
    if (BAD_ADDRESS.test(envelope.from)) {
      const message = `invalid envelope sender ${JSON.stringify(envelope.from)}`;
      return {
        accepted: [],
        failed: recipients.map((recipient) => ({ recipient, kind: "permanent", message })),
      };
    }
    if (valid.length === 0) return { accepted: [], failed: invalid };
    if (this.#closed) {
      const message = `delivery to ${this.id} stopped: the transport is closed`;
      return mergeResults([
        { accepted: [], failed: valid.map((recipient) => ({ recipient, kind: "temporary", message })) },
        { accepted: [], failed: invalid },
      ]);
    }

    // the addresses as they go on the wire (domains normalised); replies are matched on those and
    // reported under the address the entry gave
    const wire = valid.map(wireAddress);
    const given = new Map(wire.map((w, i) => [w, valid[i] ?? w]));
    let result: SendResult;
    try {
      const info = await this.#sendPrepared(
        // nodemailer copies extra envelope keys through to MAIL FROM: SIZE=, BODY=8BITMIME
        {
          from: envelope.from === "" ? "" : wireAddress(envelope.from),
          to: wire,
          size: raw.length,
          use8BitMime: hasEightBit(raw),
        },
        raw,
      );
      result = resultOfInfo(info, wire);
    } catch (err) {
      result = resultOfError(err, wire);
    }
    result = {
      ...result,
      accepted: result.accepted.map((r) => given.get(r) ?? r),
      failed: result.failed.map((f) => ({ ...f, recipient: given.get(f.recipient) ?? f.recipient })),
    };
    result = this.#scrub(mergeResults([result, { accepted: [], failed: invalid }]));
    this.#logger?.debug(
      {
        host: this.id,
        accepted: result.accepted.length,
        failed: result.failed.length,
        hostError: result.hostError?.kind,
      },
      "smtp transaction",
    );
    return result;
  }

  /** Hand the message straight to nodemailer's connection pool (see nodemailer-adapter.ts). */
  #sendPrepared(
    env: Envelope & { size: number; use8BitMime: boolean },
    raw: Buffer,
  ): Promise<SMTPPool.SentMessageInfo> {
    return sendPrepared(this.#mailer, env, raw, `delivery to ${this.id} stopped: the transport is closed`);
  }

  /**
   * Connect, greet, authenticate and quit, without sending anything: a probe of a host that is down.
   * Resolves undefined when the host works, else what is wrong with it.
   */
  async probe(): Promise<HostError | undefined> {
    if (this.#closed)
      return { kind: "connect", message: `delivery to ${this.id} stopped: the transport is closed` };
    try {
      await this.#mailer.verify();
      return undefined;
    } catch (err) {
      const he = hostErrorOf(err) ?? {
        kind: "connect" as const,
        message: err instanceof Error ? err.message : String(err),
      };
      return { ...he, message: this.#redact(he.message) };
    }
  }

  /** Close the pool's connections; sends still queued resolve as temporary failures. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pool?.close();
  }

  #redact(s: string): string {
    let out = s;
    for (const secret of this.#secrets) out = out.split(secret).join("[redacted]");
    return out;
  }

  #scrub(r: SendResult): SendResult {
    if (this.#secrets.length === 0) return r;
    const failed = r.failed.map((f) => ({ ...f, message: this.#redact(f.message) }));
    return r.hostError
      ? { ...r, failed, hostError: { ...r.hostError, message: this.#redact(r.hostError.message) } }
      : { ...r, failed };
  }
}

// deliverBatched lived here first; callers import it from the transport's module
export { deliverBatched } from "./batches.js";
