/** Queue a notice composed by src/lists/notices.ts in `outgoing`; durable when it resolves. */
import { createHash } from "node:crypto";
import type { Notice } from "../lists/notices.js";
import type { Entry } from "../queue/types.js";
import type { Queues } from "./context.js";

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
  queues: Queues,
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
