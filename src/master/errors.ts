/** Errors of the master process. */
import { QrunnerError } from "../util/errors.js";

/** Another master holds the lock on this state directory. */
export class MasterRunningError extends QrunnerError {
  readonly pid: number | null;
  readonly host: string | null;
  constructor(stateDir: string, pid: number | null, host: string | null, options?: { cause?: unknown }) {
    const who = pid === null ? "an unknown process" : `pid ${pid} on ${host ?? "an unknown host"}`;
    super(
      "EMASTER_RUNNING",
      `another master holds the lock on ${stateDir} (${who}); stop it with \`qrunner stop\`, or remove ${stateDir}/master.lock if no master runs`,
      options,
    );
    this.pid = pid;
    this.host = host;
  }
}

/** The lock could not be taken or kept for another reason (permissions, a missing directory). */
export class LockError extends QrunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ELOCK", message, options);
  }
}
