/**
 * What one SMTP transaction did to each recipient, and how nodemailer's errors map onto that.
 *
 * nodemailer (7.x, lib/smtp-connection) reports:
 *  - some RCPTs rejected: success, `info.accepted` / `info.rejected`, and `info.rejectedErrors[]` each with
 *    `recipient`, `responseCode`, `response`;
 *  - every RCPT rejected: error `EENVELOPE` (command "RCPT TO") carrying the same `rejected`/`rejectedErrors`;
 *  - MAIL FROM or DATA command refused: `EENVELOPE` with `responseCode`; message refused after the
 *    data: `EMESSAGE` with `responseCode`;
 *  - bad greeting: `EPROTOCOL` (command "CONN"); 421 to EHLO: `ECONNECTION` (command "EHLO");
 *  - refused/unreachable: `ESOCKET` (the errno name survives only in the message, e.g. "connect ECONNREFUSED");
 *  - connection lost in a session: `ECONNECTION` "Connection closed unexpectedly" or `ESOCKET` (ECONNRESET,
 *    EPIPE); closed before any greeting: no code, "Unexpected socket close" or, from the pool, "Reached
 *    maximum number of retries after connection was closed";
 *  - `ETIMEDOUT` (connect, greeting or socket idle), `ETLS`, `EAUTH`, `EDNS`.
 */

export type FailureKind = "temporary" | "permanent";

export interface RecipientFailure {
  recipient: string;
  /** the SMTP reply code, when the server gave one */
  code?: number;
  kind: FailureKind;
  message: string;
}

/** Why no transaction could take place with the host at all. */
export type HostErrorKind = "connect" | "timeout" | "greeting" | "tls" | "auth";

export interface HostError {
  kind: HostErrorKind;
  message: string;
  /** the SMTP reply code, when the failure was a reply (e.g. a 421 greeting) */
  code?: number;
}

export interface SendResult {
  accepted: string[];
  failed: RecipientFailure[];
  /** set when the host could not be used at all; every recipient is then a temporary failure */
  hostError?: HostError;
}

/** 4xx, and 552 (RFC 5321 says to treat it as temporary), are temporary; other 5xx are permanent. */
export function replyKind(code: number | undefined): FailureKind {
  if (code === undefined || code === 552) return "temporary";
  return code >= 500 && code <= 599 ? "permanent" : "temporary";
}

/** The fields of nodemailer's errors that we read; everything is checked, nothing trusted. */
interface SmtpErrorFields {
  message: string;
  code?: unknown;
  responseCode?: unknown;
  response?: unknown;
  command?: unknown;
  recipient?: unknown;
  rejectedErrors?: unknown;
  syscall?: unknown;
  library?: unknown;
}

function fields(err: unknown): SmtpErrorFields {
  if (err instanceof Error) return err as SmtpErrorFields;
  return { message: String(err) };
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isInteger(v) ? v : undefined;
}

/** The server's reply when there is one (its own words), else nodemailer's description; one line. */
function text(e: SmtpErrorFields): string {
  const t = str(e.response) ?? e.message;
  // line by line: /\s*\r?\n\s*/g retries its leading \s* at every offset of a long blank run
  return t
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join(" ");
}

const UNREACHABLE =
  /\b(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ENETDOWN|EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN|EAI_FAIL)\b/;
const TLS_TROUBLE = /certificate|ssl|tls|handshake|wrong version|self.signed/i;
const CLOSED_BEFORE_GREETING =
  /^(Unexpected socket close|Reached maximum number of retries after connection was closed)/;
const SESSION_COMMANDS = new Set(["CONN", "EHLO", "HELO", "LHLO"]);

function timeoutText(message: string): string {
  if (message.startsWith("Connection timeout")) return "timed out connecting (connect_timeout)";
  if (message.startsWith("Greeting never received")) return "timed out waiting for the greeting (timeout)";
  return `timed out: the server stopped answering (timeout): ${message}`;
}

/** Recognise a failure that concerns the host rather than this message; undefined when it does not. */
export function hostErrorOf(err: unknown): HostError | undefined {
  const e = fields(err);
  const code = str(e.code);
  const reply = num(e.responseCode);
  const withCode = (kind: HostErrorKind, message: string): HostError =>
    reply === undefined ? { kind, message } : { kind, message, code: reply };
  switch (code) {
    case "EAUTH":
      return withCode("auth", `authentication failed: ${text(e)}`);
    case "ETLS":
      return withCode("tls", `TLS failed: ${text(e)}`);
    case "ETIMEDOUT":
      return withCode("timeout", timeoutText(e.message));
    case "EDNS":
      return { kind: "connect", message: `cannot resolve the host name: ${e.message}` };
    case "ESOCKET":
      if (str(e.syscall) === "connect" || UNREACHABLE.test(e.message))
        return { kind: "connect", message: `cannot connect: ${e.message}` };
      if (e.library !== undefined || TLS_TROUBLE.test(e.message))
        return { kind: "tls", message: `TLS failed: ${e.message}` };
      return undefined;
    case undefined:
      if (CLOSED_BEFORE_GREETING.test(e.message))
        return { kind: "connect", message: "the server closed the connection before greeting" };
      return undefined;
  }
  if (reply === 421) return withCode("greeting", `service not available: ${text(e)}`);
  if (reply !== undefined && SESSION_COMMANDS.has(str(e.command) ?? "")) {
    return withCode("greeting", `the server refused the session: ${text(e)}`);
  }
  return undefined;
}

/** Every recipient failed the same way. */
function allFailed(
  recipients: readonly string[],
  kind: FailureKind,
  message: string,
  code?: number,
): RecipientFailure[] {
  return recipients.map((recipient) =>
    code === undefined ? { recipient, kind, message } : { recipient, kind, message, code },
  );
}

/** Per-recipient failures from nodemailer's `rejectedErrors`. */
function rejectedFailures(rejectedErrors: unknown): Map<string, RecipientFailure> {
  const out = new Map<string, RecipientFailure>();
  if (!Array.isArray(rejectedErrors)) return out;
  for (const item of rejectedErrors as unknown[]) {
    const e = fields(item);
    const recipient = str(e.recipient);
    if (recipient === undefined) continue;
    const code = num(e.responseCode);
    const f: RecipientFailure = { recipient, kind: replyKind(code), message: text(e) };
    if (code !== undefined) f.code = code;
    out.set(recipient, f);
  }
  return out;
}

/** Map a failed send (nodemailer rejected the promise) onto every recipient. */
export function resultOfError(err: unknown, recipients: readonly string[]): SendResult {
  const hostError = hostErrorOf(err);
  if (hostError) {
    return {
      accepted: [],
      failed: allFailed(recipients, "temporary", hostError.message, hostError.code),
      hostError,
    };
  }
  const e = fields(err);
  const code = str(e.code);
  const reply = num(e.responseCode);
  // every RCPT was refused: each recipient keeps its own reply
  const rejected = rejectedFailures(e.rejectedErrors);
  if (rejected.size > 0) {
    const failed = recipients.map(
      (r) =>
        rejected.get(r) ?? {
          recipient: r,
          kind: "temporary" as const,
          message: `no reply for this recipient: ${text(e)}`,
        },
    );
    return { accepted: [], failed };
  }
  // MAIL FROM, DATA or the message refused: one reply for the whole transaction
  if (reply !== undefined)
    return { accepted: [], failed: allFailed(recipients, replyKind(reply), text(e), reply) };
  if (code === "EMESSAGE") {
    // refused before sending (e.g. larger than the SIZE the server announced): retrying cannot help
    return { accepted: [], failed: allFailed(recipients, "permanent", text(e)) };
  }
  // the connection dropped mid-transaction, or anything unforeseen: nothing was accepted, try again later
  const lost = code === "ECONNECTION" || code === "ESOCKET";
  return {
    accepted: [],
    failed: allFailed(
      recipients,
      "temporary",
      lost ? `connection lost during the transaction: ${text(e)}` : text(e),
    ),
  };
}

/** Map a completed transaction (some recipients may have been refused at RCPT) onto every recipient. */
export function resultOfInfo(
  info: { accepted?: unknown; rejectedErrors?: unknown },
  recipients: readonly string[],
): SendResult {
  const acceptedSet = new Set(
    Array.isArray(info.accepted) ? (info.accepted as unknown[]).filter((a) => typeof a === "string") : [],
  );
  const rejected = rejectedFailures(info.rejectedErrors);
  const accepted: string[] = [];
  const failed: RecipientFailure[] = [];
  for (const r of recipients) {
    const f = rejected.get(r);
    if (f) failed.push(f);
    else if (acceptedSet.has(r)) accepted.push(r);
    else
      failed.push({
        recipient: r,
        kind: "temporary",
        message: "the server gave no reply for this recipient",
      });
  }
  return { accepted, failed };
}

/** Merge the results of several transactions of one message. The first host error wins. */
export function mergeResults(results: readonly SendResult[]): SendResult {
  const merged: SendResult = { accepted: [], failed: [] };
  for (const r of results) {
    merged.accepted.push(...r.accepted);
    merged.failed.push(...r.failed);
    if (r.hostError && !merged.hostError) merged.hostError = r.hostError;
  }
  return merged;
}
