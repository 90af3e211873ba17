/** Logger factory: one pino JSON line per event, to stdout (journald) or to `log.file`. */
import pino from "pino";
import type { Logger, DestinationStream } from "pino";

export type { Logger };

export interface LogOptions {
  level: string;
  file?: string | undefined;
}

export interface LoggerHandle {
  readonly logger: Logger;
  /** reopen the log file (SIGHUP, after logrotate moved it) */
  reopen(): void;
  /** flush and close; safe to call twice */
  close(): void;
}

export function createLogger(opts: LogOptions, bindings: Record<string, unknown> = {}): LoggerHandle {
  // Synchronous writes, one per line: lines leave in the order they were logged, nothing waits in
  // a buffer at exit, and close() has nothing to flush. (An asynchronous destination flushed at exit
  // can write its buffer ahead of a write still in flight, and spin on a pipe nobody drains.)
  const dest = opts.file
    ? pino.destination({ dest: opts.file, sync: true, mkdir: true })
    : pino.destination({ dest: 1, sync: true });
  const logger = pino(
    {
      level: opts.level,
      base: { pid: process.pid, ...bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ["pass", "password", "*.pass", "*.password", "auth.pass", "*.auth.pass"],
        censor: "[redacted]",
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    dest as DestinationStream,
  );
  let closed = false;
  return {
    logger,
    reopen() {
      if (opts.file && !closed) dest.reopen();
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        dest.flushSync();
      } catch {
        // nothing buffered, or stdout closed: nothing to lose
      }
    },
  };
}

/** A logger that writes nothing, for library use and tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
