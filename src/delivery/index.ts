/** The delivery library: SMTP transports, per-recipient outcomes, host routing and host health. */
export { HostTransport, deliverBatched } from "./transport.js";
export type { Envelope, HostConfig, HostTransportOptions } from "./transport.js";
export { replyKind, hostErrorOf, resultOfError, resultOfInfo, mergeResults } from "./outcome.js";
export type { FailureKind, RecipientFailure, HostError, HostErrorKind, SendResult } from "./outcome.js";
export { hostId, weightOf, autoSlices, hostForSha1, pickWeighted, routeHost } from "./hosts.js";
export type { HostRef, HostSlice, RouteOptions } from "./hosts.js";
export {
  HostHealthStore,
  PROBE_HOLD_MS,
  readHostHealth,
  isAvailable,
  freshRecord,
  hostFileName,
  hostsDir,
} from "./health.js";
export type {
  HostHealthRecord,
  HostState,
  FailureOutcome,
  SuccessOutcome,
  HostHealthStoreOptions,
} from "./health.js";
export { MissingSecretError, CaFileError, HealthStoreError } from "./errors.js";
