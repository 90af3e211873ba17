/** Errors of the delivery layer that an operator must fix in the config or the environment. */
import { QrunnerError } from "../util/errors.js";

/** A host's `auth.pass_env` names an environment variable that is not set (or is empty). */
export class MissingSecretError extends QrunnerError {
  readonly host: string;
  /** the environment variable, or the credential name */
  readonly variable: string;
  constructor(host: string, variable: string, credential?: { why: string; cause?: unknown }) {
    super(
      "ESECRET_MISSING",
      credential
        ? `smtp host ${host}: credential ${variable} (auth.pass_credential) ${credential.why}; ` +
            `give it to the service with LoadCredential=${variable}:/etc/qrunner/${variable} (docs/master.md)`
        : `smtp host ${host}: environment variable ${variable} (auth.pass_env) is not set; ` +
            `export the SMTP password in it for the qrunner service`,
      credential?.cause !== undefined ? { cause: credential.cause } : undefined,
    );
    this.host = host;
    this.variable = variable;
  }
}

/** A host's `ca` file cannot be read. */
export class CaFileError extends QrunnerError {
  readonly host: string;
  readonly file: string;
  constructor(host: string, file: string, options?: { cause?: unknown }) {
    const why = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super("ECAFILE", `smtp host ${host}: cannot read the ca file ${file}${why}`, options);
    this.host = host;
    this.file = file;
  }
}

/** The host health record directory cannot be written (permissions, disk full). */
export class HealthStoreError extends QrunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("EHEALTH_STORE", message, options);
  }
}
