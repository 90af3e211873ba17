/** Queue a notice composed by src/lists/notices.ts in `outgoing`; durable when it resolves. */
import type { Notice } from "../lists/notices.js";
import type { Queues } from "./context.js";

export async function queueNotice(queues: Queues, list: string, n: Notice): Promise<string> {
  const outgoing = await queues.get("outgoing");
  return outgoing.enqueue(n.message, { sender: n.sender, recipients: n.recipients, list, kind: "notice" });
}
