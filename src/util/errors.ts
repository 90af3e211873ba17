/**
 * Typed errors. Each kind is a small class with a stable `code` and the
 * context an operator needs to act on it; the underlying error goes in `cause`.
 */
export class QrunnerError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A config or list file that does not validate. `message` reads `file:line:col: what`. */
export class ConfigError extends QrunnerError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super("ECONFIG", issues.map(formatIssue).join("\n"), options);
    this.issues = issues;
  }
}

export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.message}`;
}

/** The queue could not take an entry now (disk full, permissions, lock): the caller should retry later. */
export class QueueUnavailableError extends QrunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("EQUEUE_UNAVAILABLE", message, options);
  }
}

/**
 * Part of an entry's work is done and cannot be undone (recipients accepted by an SMTP server), but
 * the rest could not be queued: the entry is to be kept with `meta` (what is left), not as it was.
 */
export class PartialProgressError extends QueueUnavailableError {
  readonly remaining: { recipients: string[] };
  constructor(message: string, remaining: { recipients: string[] }, options?: { cause?: unknown }) {
    super(message, options);
    this.remaining = remaining;
  }
}

/** A queue file that cannot be read or parsed; it belongs in `bad`. */
export class CorruptEntryError extends QrunnerError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super("ECORRUPT", `${file}: ${message}`, options);
    this.file = file;
  }
}

/** Input that is not an RFC 5322 message (inject exits 65). */
export class NotAMessageError extends QrunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ENOTMESSAGE", message, options);
  }
}

/** An envelope recipient that is no list address (inject exits 67). */
export class UnknownAddressError extends QrunnerError {
  readonly address: string;
  constructor(address: string, message?: string) {
    super("ENOADDRESS", message ?? `no such list or address: ${address}`);
    this.address = address;
  }
}

/** Bad command-line usage (exit 64). */
export class UsageError extends QrunnerError {
  constructor(message: string) {
    super("EUSAGE", message);
  }
}

/** Turn anything thrown into a one-line reason for logs, shunt records and status. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
