/** Errors of cluster mode, each with the exit code `qrunner start` ends with. */
import { QrunnerError } from "../util/errors.js";

export class ClusterError extends QrunnerError {
  /** 78: fix the config (systemd does not restart); 1: the node name is in use; 75: etcd unreachable, try again */
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.exitCode = exitCode;
  }
}

/** This node's `cluster:` settings differ from the ones the cluster runs with. */
export class ClusterSettingsError extends ClusterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ECLUSTER_SETTINGS", message, 78, options);
  }
}

/** Another live master uses this node name. */
export class NodeInUseError extends ClusterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ENODE_IN_USE", message, 1, options);
  }
}

/**
 * etcd cannot be reached or refuses a request this node cannot do without (joining, at start). 75
 * (EX_TEMPFAIL): systemd starts the master again, as etcd may be starting on the same machines.
 */
export class ClusterEtcdError extends ClusterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ECLUSTER_ETCD", message, 75, options);
  }
}
