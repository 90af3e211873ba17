/** The queue entry model shared by every layer above the queue. */

/** Names of the queues under `qfiles/`. */
export const QUEUE_NAMES = [
  "incoming",
  "outgoing",
  "bounce",
  "command",
  "archive",
  "backoff",
  "shunt",
  "bad",
] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/** JSON values only: metadata is data, never code. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One failed attempt, kept in the entry's history. */
export interface FailureRecord {
  /** ms since the epoch */
  at: number;
  /** which queue/runner recorded it */
  queue: string;
  /** `host:port` for delivery failures */
  host?: string;
  /** SMTP reply code, when there was one */
  code?: number;
  /** "temporary" or "permanent" */
  kind: "temporary" | "permanent";
  message: string;
  /** recipients this failure concerned (all of the entry's when absent) */
  recipients?: string[];
}

/** The JSON metadata stored with each entry (format version 1). */
export interface EntryMeta {
  /** format version of the entry file */
  version: 1;
  /** the list's posting address, when the entry belongs to a list */
  list?: string;
  /** envelope sender; "" is the null sender (bounces) */
  sender: string;
  /** envelope recipients still to serve */
  recipients: string[];
  /** the envelope recipient the message arrived for (inject --to, LMTP RCPT) */
  to?: string;
  /** what the entry is: post, command, bounce, owner, notice, bounce-event, ... */
  kind?: string;
  /** ms since the epoch when first queued anywhere (inject time) */
  received: number;
  /** delivery attempts so far */
  attempts: number;
  /** ms since the epoch: not to be handled before this */
  deliverAfter?: number;
  /** failures so far, oldest first */
  failures: FailureRecord[];
  /** times recovered after a crash while in progress */
  recoveries: number;
  /** for entries in shunt: the queue they failed in, and why */
  shuntedFrom?: string;
  shuntReason?: string;
  /** runner-specific data */
  extra?: { [key: string]: JsonValue };
}

/** Metadata for a new entry: the rest is filled in by the Switchboard. */
export type NewEntryMeta = Partial<Omit<EntryMeta, "version">> & Pick<EntryMeta, "sender" | "recipients">;

/** An entry as dequeued: its file, id and contents. */
export interface Entry {
  /** the queue it is in */
  readonly queue: string;
  /** the 40-hex-digit sha1 from its file name */
  readonly id: string;
  /** the file name when queued (`<time>+<sha1>.qf`) */
  readonly name: string;
  /** ms since epoch from the name: queue time, or due time for deferred entries */
  readonly time: number;
  readonly meta: EntryMeta;
  /** the raw message bytes, exactly as received */
  readonly message: Buffer;
}
