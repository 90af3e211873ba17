/**
 * The runner names, without the schema: a worker checks its `--runner` against them before it has a
 * config, and a worker given its config by the master never loads zod at all.
 */
import type { RunnerName } from "./schema.js";

export const RUNNER_NAMES: readonly RunnerName[] = [
  "incoming",
  "outgoing",
  "bounce",
  "command",
  "archive",
  "backoff",
];
