/** Waiting for the master's workers before the demo sends anything. */
import { QrunnerError } from "../util/errors.js";
import { MasterExitedError, type LogTail, type MasterChild } from "./master.js";
import type { Observer } from "./observer.js";

/** The workers the demo needs did not all say they are ready in time. */
export class NotReadyError extends QrunnerError {
  constructor(waited: number, ready: readonly string[]) {
    super(
      "EDEMO_NOT_READY",
      `the master's workers were not ready after ${Math.round(waited / 1000)}s ` +
        `(ready: ${ready.join(", ") || "none"}); see the log file for why`,
    );
  }
}

/** What delivery needs: two incoming, one outgoing per primary, one backoff worker. */
const NEEDED: ReadonlyArray<[string, number]> = [
  ["incoming", 2],
  ["outgoing", 2],
  ["backoff", 1],
];

export async function waitReady(
  master: MasterChild,
  tail: LogTail,
  observer: Observer,
  timeoutMs: number,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    await tail.poll();
    if (NEEDED.every(([runner, n]) => observer.readyCount(runner) >= n)) return;
    if (!master.running) {
      const { code, signal } = await master.exited;
      throw new MasterExitedError(code, signal, master.stderr());
    }
    if (Date.now() > end) throw new NotReadyError(timeoutMs, [...observer.ready].sort());
    await new Promise((r) => setTimeout(r, 100));
  }
}
