/** One message to many recipients through one host: transactions of at most max_recipients. */
import { mergeResults } from "./outcome.js";
import type { HostError, SendResult } from "./outcome.js";
import type { Envelope, HostTransport } from "./transport.js";

/**
 * Deliver one message to all its recipients through one host, in transactions of at most `maxRecipients`,
 * up to `transport.poolSize` at once. Once a transaction meets a host error, the transactions not yet
 * started are not attempted: their recipients fail temporarily with the same host error.
 */
export async function deliverBatched(
  transport: Pick<HostTransport, "send" | "poolSize">,
  envelope: Envelope,
  raw: Buffer,
  maxRecipients: number,
): Promise<SendResult> {
  if (!Number.isInteger(maxRecipients) || maxRecipients < 1)
    throw new RangeError(`maxRecipients must be >= 1, not ${maxRecipients}`);
  const recipients = [...new Set(envelope.to)];
  const batches: string[][] = [];
  for (let i = 0; i < recipients.length; i += maxRecipients)
    batches.push(recipients.slice(i, i + maxRecipients));

  const results: SendResult[] = new Array<SendResult>(batches.length);
  let hostError: HostError | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const i = next++;
      const batch = batches[i] ?? [];
      if (hostError) {
        const he = hostError;
        results[i] = {
          accepted: [],
          failed: batch.map((recipient) => ({
            recipient,
            kind: "temporary",
            message: he.message,
            ...(he.code !== undefined ? { code: he.code } : {}),
          })),
          hostError: he,
        };
        continue;
      }
      const r = await transport.send({ from: envelope.from, to: batch }, raw);
      results[i] = r;
      if (r.hostError && !hostError) hostError = r.hostError;
    }
  };
  const lanes = Math.max(1, Math.min(transport.poolSize, batches.length));
  await Promise.all(Array.from({ length: lanes }, () => worker()));
  return mergeResults(results);
}
