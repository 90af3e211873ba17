/**
 * One LMTP transaction stored once per list (issue 15): the accepted recipients are grouped by the
 * list they name, and each group becomes one `incoming` entry holding the message once with all of
 * that group's addresses in `recipients` (the incoming runner handles each of their roles). What one
 * transaction can store is its size times the number of distinct lists, however many recipients.
 */
import type { NewEntryMeta } from "../queue/types.js";
import { incomingMeta, type RoutedRecipient } from "./inject.js";

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
