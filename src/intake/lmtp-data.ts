/**
 * Reading one LMTP message's DATA into memory: never more than the SIZE limit of it, and only what
 * the budget shared by every connection grants (ByteBudget, lmtp-limits.ts); past either the rest is
 * read and dropped, and the message gets one refusal for all its recipients.
 */
import type { SMTPServerDataStream } from "smtp-server";
import type { ByteBudget } from "./lmtp-limits.js";

export type DataRead =
  | { readonly kind: "message"; readonly input: Buffer; readonly size: number }
  | { readonly kind: "too-big"; readonly size: number }
  | { readonly kind: "over-budget"; readonly size: number }
  | { readonly kind: "error"; readonly err: Error };

export interface DataReader {
  /** the message, or why there is none; the first of an error and the end decides */
  readonly read: Promise<DataRead>;
  /** give the bytes held back to the budget (once the message is stored or refused) */
  release(): void;
}

export function readData(stream: SMTPServerDataStream, maxSize: number, budget: ByteBudget): DataReader {
  const chunks: Buffer[] = [];
  let size = 0;
  let held = 0;
  let overBudget = false;
  const release = (): void => {
    budget.give(held);
    held = 0;
  };
  const read = new Promise<DataRead>((resolve) => {
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      // past the limit smtp-server answers 552 for every recipient itself: keep nothing more
      if (size > maxSize || overBudget) return;
      if (!budget.take(chunk.length)) {
        // the connections together hold all the memory they may: drop this message, the MTA retries
        overBudget = true;
        release();
        chunks.length = 0;
        return;
      }
      held += chunk.length;
      chunks.push(chunk);
    });
    stream.once("error", (err) => resolve({ kind: "error", err }));
    stream.once("end", () => {
      if (stream.sizeExceeded || size > maxSize) resolve({ kind: "too-big", size });
      else if (overBudget) resolve({ kind: "over-budget", size });
      else {
        const input = chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, size);
        resolve({ kind: "message", input, size });
      }
    });
  });
  return { read, release };
}
