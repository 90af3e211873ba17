/**
 * The bounce runner's handling of bounces nobody can read (a list's `unrecognized_bounces`): counted
 * in the list's state, then forwarded whole to the owners or the site owner while the list's hourly
 * budget lasts, listed in the hourly digest past it, or dropped with `discard`. The entry is finished
 * either way: nothing is kept in `shunt`, and the digest holds at most DIGEST_ITEMS lines.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import { decodeHeaderText } from "../lists/header-text.js";
import { getHeader } from "../lists/message.js";
import { oneLine, unrecognisedDigest, unrecognisedForward } from "../lists/notices-bounces.js";
import type { ListConfig } from "../lists/schema.js";
import type { ListState } from "../lists/state-shape.js";
import { ListStateStore } from "../lists/state.js";
import {
  addToDigest,
  digestDue,
  takeDueDigest,
  takeForwardSlot,
  unrecognisedDestination,
  unrecognisedState,
} from "../lists/unrecognised.js";
import type { Entry } from "../queue/types.js";
import type { Queues } from "./context.js";
import { queueNotice } from "../lists/queue-notice.js";

/** Count, then forward, list in the digest, or drop one unrecognised bounce (inside one state update). */
export async function handleUnrecognised(
  queues: Queues,
  config: Config,
  list: ListConfig,
  entry: Entry,
  reason: string,
  log: Logger,
): Promise<void> {
  const dest = unrecognisedDestination(list, config);
  const now = Date.now();
  const from = oneLine(getHeader(entry.message, "from") ?? entry.meta.sender);
  const subject = oneLine(decodeHeaderText(getHeader(entry.message, "subject") ?? ""));
  const ref = { from, subject, size: entry.message.length, reason: oneLine(reason) };
  // the forward is queued (durably) inside the update, before the counters are written: a crash in
  // between re-runs the entry, which rewrites the same notice file
  await new ListStateStore(config.state, list.address).update(async (s) => {
    s.unrecognisedBounces++;
    if (dest.action === "discard") {
      unrecognisedState(s).discarded++;
      log.info({ ...ref, unrecognised: s.unrecognisedBounces }, "unrecognised bounce discarded");
      return;
    }
    if (dest.fallback) log.warn({ setting: "unrecognized_bounces: site" }, dest.fallback);
    await sendDueDigest(queues, list, dest.to, s, now, log);
    if (takeForwardSlot(s, now)) {
      await queueNotice(queues, list.address, unrecognisedForward(list, dest.to, ref, entry.message), {
        entry,
        index: 0,
      });
      log.warn({ ...ref, to: dest.to, unrecognised: s.unrecognisedBounces }, "unrecognised bounce forwarded");
    } else {
      addToDigest(s, { at: now, ...ref }, now);
      log.warn(
        { ...ref, pending: s.unrecognised?.digest?.count, unrecognised: s.unrecognisedBounces },
        "unrecognised bounce past the hourly forwarding budget; listed in the next digest",
      );
    }
  });
}

/** Queue the list's digest when its hour is over (state changed in place). */
async function sendDueDigest(
  queues: Queues,
  list: ListConfig,
  to: readonly string[],
  s: ListState,
  now: number,
  log: Logger,
): Promise<void> {
  const d = takeDueDigest(s, now);
  if (d === null) return;
  // one id per list and hour: a re-run after a crash rewrites the same file
  const id = createHash("sha1").update(`${list.address}:unrecognised-digest:${d.since}`).digest("hex");
  await queueNotice(queues, list.address, unrecognisedDigest(list, to, d), {
    entry: { id, time: d.since },
    index: 0,
  });
  log.warn({ list: list.address, count: d.count, since: d.since }, "unrecognised bounce digest sent");
}

/** Send a list's digest when its hour is over and no bounce came to do it (the runner's tick). */
export async function flushDigest(
  queues: Queues,
  config: Config,
  list: ListConfig,
  log: Logger,
  now: number,
): Promise<void> {
  const store = new ListStateStore(config.state, list.address);
  if (!digestDue(await store.read(), now)) return;
  const dest = unrecognisedDestination(list, config);
  await store.update(async (s) => {
    if (dest.action === "discard") {
      // the list switched to discard while a digest waited: it goes nowhere
      if (takeDueDigest(s, now))
        log.info({ list: list.address }, "unrecognised bounce digest dropped (discard)");
      return;
    }
    await sendDueDigest(queues, list, dest.to, s, now, log);
  });
}
