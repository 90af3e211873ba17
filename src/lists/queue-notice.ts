/**
 * Queue a notice composed by notices.ts / notice-texts.ts in `outgoing`; durable when it resolves.
 * Shared by the runners and the moderation service (src/lists/moderation.ts), so every notice qrunner
 * writes is queued one way.
 */
import { createHash } from "node:crypto";
import type { EnqueueOptions } from "../queue/switchboard.js";
import type { Entry, NewEntryMeta } from "../queue/types.js";
import type { Notice } from "./notices.js";

/** Where an entry can be queued: a Switchboard, as far as this layer needs one. */
export interface Enqueuer {
  enqueue(message: Buffer, meta: NewEntryMeta, opts?: EnqueueOptions): Promise<string>;
}

/** Queues opened by name (the runners' `Queues`, or a command's own). */
export interface QueueSource {
  get(queue: string): Promise<Enqueuer>;
}

/**
 * The entry whose handling sends the notice, and which of its notices this is. The notice then gets
 * an id and a queue time derived from that entry, so a handler re-run after a crash rewrites the
 * same file (while it is still queued) instead of sending the notice twice.
 */
export interface NoticeOrigin {
  entry: Pick<Entry, "id" | "time">;
  index: number;
}

export async function queueNotice(
  queues: QueueSource,
  list: string,
  n: Notice,
  origin?: NoticeOrigin,
): Promise<string> {
  const outgoing = await queues.get("outgoing");
  const meta = { sender: n.sender, recipients: n.recipients, list, kind: "notice" };
  if (!origin) return outgoing.enqueue(n.message, meta);
  const id = createHash("sha1").update(`${origin.entry.id}:notice:${origin.index}`).digest("hex");
  return outgoing.enqueue(n.message, meta, { id, notBefore: origin.entry.time });
}
