/**
 * The LMTP listener's options (./lmtp.ts), and how `intake.lmtp` from the config maps to them. Kept
 * apart so that the config's shape and the defaults are read in one place.
 */
import type { ListConfig } from "../lists/schema.js";
import type { Logger } from "../util/log.js";
import type { LmtpOutcome } from "./transaction.js";
import type { SocketAccess } from "./unix-socket.js";

/** The settings in force (a getter: the master replaces them on reload). */
export interface IntakeSettings {
  readonly config: {
    readonly qfiles: string;
    readonly state: string;
    /** `queue.recycle` (absent: on) */
    readonly queue?: { readonly recycle: boolean };
  };
  readonly lists: ReadonlyMap<string, ListConfig>;
}

export interface LmtpOptions {
  /** `intake.lmtp`: HOST:PORT (port 0: a free port the system picks, for tests) or unix:/path */
  listen: string;
  /** for a Unix socket: its mode (default 0660), owner and group */
  socket?: SocketAccess | undefined;
  settings: () => IntakeSettings;
  logger: Logger;
  /** the SIZE announced and enforced, bytes (default 50 MiB): the most one connection buffers */
  maxSize?: number | undefined;
  /** recipients per transaction (default 1000); more get 452 at RCPT and are retried by the MTA */
  maxRecipients?: number | undefined;
  /** idle time before a connection is closed, ms (default 5 min, RFC 5321's server timeout) */
  socketTimeoutMs?: number | undefined;
  /** connections at once (default 50; Postfix opens up to its destination concurrency limit, 20) */
  maxClients?: number | undefined;
  /** a connection's whole length, ms (default 10 min); then 421 once no message is in DATA */
  maxSessionMs?: number | undefined;
  /** transactions (MAIL) per connection (default 1000); the next MAIL gets 421 */
  maxTransactions?: number | undefined;
  /** message bytes buffered by all connections together (default 200 MiB); past it 452 */
  maxBufferedBytes?: number | undefined;
  /** on close, how long transactions in DATA may take to finish, ms (default 10 s) */
  closeGraceMs?: number | undefined;
  onOutcome?: ((outcome: LmtpOutcome, recipients: number) => void) | undefined;
}

export const LMTP_DEFAULT_MAX_SIZE = 50 * 1024 * 1024;
export const LMTP_DEFAULT_MAX_BUFFERED = 200 * 1024 * 1024;

/** The listener's options from `intake.lmtp` as the config schema gives it. */
export function lmtpOptions(c: {
  listen: string;
  mode?: number | undefined;
  owner?: string | number | undefined;
  group?: string | number | undefined;
  max_connections?: number | undefined;
  max_session?: number | undefined;
  max_transactions?: number | undefined;
  max_buffered?: number | undefined;
}): Pick<
  LmtpOptions,
  "listen" | "socket" | "maxClients" | "maxSessionMs" | "maxTransactions" | "maxBufferedBytes"
> {
  return {
    listen: c.listen,
    socket: { mode: c.mode, owner: c.owner, group: c.group },
    maxClients: c.max_connections,
    maxSessionMs: c.max_session,
    maxTransactions: c.max_transactions,
    maxBufferedBytes: c.max_buffered,
  };
}
