/**
 * Messages a worker sends its master over the IPC channel (child_process `fork`/`spawn` with 'ipc').
 * A worker started by hand has no channel and sends nothing.
 */
export type WorkerMessage =
  | { type: "ready"; runner: string; slice: string; pid: number }
  | {
      type: "heartbeat";
      /** entries finished (handled or moved on) since start */
      handled: number;
      /** entries shunted or sent to bad since start */
      failed: number;
      /** ms epoch of the last finished entry (or of start) */
      lastProgress: number;
      /** entries of this slice that are due now (0 when it has nothing to do) */
      due: number;
      /** entries being handled right now */
      inHand: number;
      lastError?: string;
      /** why the worker is not working although entries are due (e.g. "waiting for idle") */
      waiting?: string;
    };

/** Exit codes a worker uses so the master knows whether to restart it. */
export const WorkerExit = {
  /** clean stop (signal or --once) */
  OK: 0,
  /** unexpected failure: restart with backoff */
  SOFTWARE: 70,
  /** bad command line: do not restart */
  USAGE: 64,
  /** invalid config: do not restart until the config changes */
  CONFIG: 78,
} as const;

/** How often a worker sends a heartbeat, ms. */
export const HEARTBEAT_MS = 1000;
