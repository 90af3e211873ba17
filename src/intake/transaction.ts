/**
 * One LMTP transaction stored once per list (issue 15): the accepted recipients are grouped by the
 * list they name, and each group becomes one `incoming` entry holding the message once with all of
 * that group's addresses in `recipients` (the incoming runner handles each of their roles). What one
 * transaction can store is its size times the number of distinct lists, however many recipients.
 */
import type { Switchboard } from "../queue/switchboard.js";
import type { GroupCommitter } from "./group-commit.js";
import type { NewEntryMeta } from "../queue/types.js";
import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { InjectError, incomingMeta, prepareMessage, type RoutedRecipient } from "./inject.js";

/** One entry to write, and the recipients (positions in RCPT order) whose reply is its outcome. */
export interface ListGroup {
  meta: NewEntryMeta;
  rcpts: number[];
}

/** Group the routed recipients (null: not ours, left out) into one entry per list. */
export function groupByList(sender: string, routed: readonly (RoutedRecipient | null)[]): ListGroup[] {
  const groups = new Map<string, { routed: RoutedRecipient[]; seen: Set<string>; rcpts: number[] }>();
  routed.forEach((r, i) => {
    if (!r) return;
    const key = r.route.list.address.toLowerCase();
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { routed: [], seen: new Set(), rcpts: [] }));
    g.rcpts.push(i);
    // the same address twice (a repeated RCPT, or another case: our addresses match regardless of
    // case) is stored once and answered twice
    const same = r.to.toLowerCase();
    if (!g.seen.has(same)) {
      g.seen.add(same);
      g.routed.push(r);
    }
  });
  return [...groups.values()].map((g) => ({ meta: listMeta(sender, g.routed), rcpts: g.rcpts }));
}

function listMeta(sender: string, routed: readonly RoutedRecipient[]): NewEntryMeta {
  const [first, ...rest] = routed;
  if (!first) throw new RangeError("a list group without recipients");
  // one recipient: exactly the entry `qrunner inject --to` writes
  if (rest.length === 0) return incomingMeta(sender, first);
  const oneRole = rest.every((r) => r.route.role === first.route.role);
  return {
    sender,
    recipients: routed.map((r) => r.to),
    to: first.to,
    list: first.route.list.address,
    ...(oneRole ? { kind: first.route.role } : {}),
  };
}

/** A reply to one recipient after DATA: the text of a 250, or an error carrying its code. */
export type Reply = string | (Error & { responseCode: number });

export function reply(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code });
}

/** A recipient as judged by the listener (validateRecipient in lmtp-recipient.ts). */
export type RecipientVerdict =
  { accept: true; routed: RoutedRecipient } | { accept: false; code: number; text: string };

export interface StoreContext {
  /** judges each recipient again: the lists may have changed since RCPT */
  validate: (address: string) => RecipientVerdict;
  /** the `incoming` queue (rejects when it cannot be opened) */
  queue: () => Promise<Switchboard>;
  /** writes entries durably, several transactions' together */
  committer: GroupCommitter;
  log: Logger;
  onOutcome?: ((outcome: LmtpOutcome, recipients: number) => void) | undefined;
}

/** What happened to one recipient, for the metrics. */
export type LmtpOutcome = "queued" | "unknown" | "invalid" | "tempfail" | "too-big";

/**
 * Store one transaction's message for its recipients; one reply per recipient, in RCPT order, 250
 * only once that recipient's list entry is durable (file and directory fsynced).
 */
export async function storeTransaction(
  ctx: StoreContext,
  input: Buffer,
  from: string,
  rcpts: readonly string[],
): Promise<Reply[]> {
  const started = Date.now();
  let prepared;
  try {
    prepared = prepareMessage(input, from);
  } catch (err) {
    if (!(err instanceof InjectError)) throw err;
    ctx.onOutcome?.("invalid", rcpts.length);
    ctx.log.warn({ from, recipients: rcpts.length, reason: err.message }, "LMTP message refused");
    return rcpts.map(() => reply(554, err.message));
  }
  const verdicts = rcpts.map((r) => ctx.validate(r));
  const groups = groupByList(
    prepared.sender,
    verdicts.map((v) => (v.accept ? v.routed : null)),
  );
  let queue: Switchboard | null = null;
  let queueError = "";
  try {
    queue = await ctx.queue();
  } catch (err) {
    queueError = describeError(err);
  }
  // one entry per list, each acknowledged on its own: a list whose entry cannot be written does
  // not hold back the others
  const results = await Promise.allSettled(
    groups.map((g) =>
      queue ? ctx.committer.enqueue(queue, prepared.raw, g.meta) : Promise.reject(new Error(queueError)),
    ),
  );
  const replies: Reply[] = verdicts.map((v) => (v.accept ? "" : reply(v.code, v.text)));
  const ids: string[] = [];
  let queued = 0;
  results.forEach((res, i) => {
    const g = groups[i];
    if (!g) return;
    if (res.status === "fulfilled") ids.push(res.value);
    for (const k of g.rcpts) {
      if (res.status === "fulfilled") queued++;
      replies[k] =
        res.status === "fulfilled"
          ? `queued as ${res.value}`
          : reply(451, `cannot queue now: ${describeError(res.reason)}`);
    }
  });
  const unknown = verdicts.filter((v) => !v.accept).length;
  const failed = rcpts.length - queued - unknown;
  if (queued) ctx.onOutcome?.("queued", queued);
  if (unknown) ctx.onOutcome?.("unknown", unknown);
  if (failed) ctx.onOutcome?.("tempfail", failed);
  const entry = {
    from,
    recipients: rcpts.length,
    queued: ids,
    size: prepared.raw.length,
    ms: Date.now() - started,
  };
  if (queued < rcpts.length)
    ctx.log.warn(
      { ...entry, failed: rcpts.length - queued, error: queueError || undefined },
      "LMTP message partly refused",
    );
  // at debug: relaying at rate, a line per message would be most of the log; each connection is
  // summed up at info when it closes (lmtp-tally.ts)
  else ctx.log.debug(entry, "LMTP message queued");
  return replies;
}
