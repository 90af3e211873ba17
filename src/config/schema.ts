/**
 * The one schema of `qrunner.yaml`: every key, its meaning (`describe`) and its default. The larger
 * sections have their schema in a module of their own (schema-runners, schema-smtp, schema-intake,
 * schema-cluster); the value types in schema-units. Paths are resolved relative to the config file by
 * the loader, not here.
 */
import { z } from "zod";
import { clusterSchema, etcdSchema } from "./schema-cluster.js";
import { lmtpSchema } from "./schema-intake.js";
import { runnersSchema } from "./schema-runners.js";
import { fallbackSchema, hostSchema } from "./schema-smtp.js";
import { duration } from "./schema-units.js";

export const configSchema = z
  .object({
    qfiles: z.string().default("../qfiles").describe("queue root, relative to the config file"),
    state: z.string().default("../var").describe("lock, pid, status, list state, archives"),
    lists: z.string().default("../lists").describe("one <list-address>.yaml per list"),
    site_owner: z
      .string()
      .max(254)
      .regex(/^[^\s<>()@,;:"\\]+@[^\s<>()@,;:"\\]+$/, "a plain mail address (local@domain)")
      .optional()
      .describe(
        "the site's postmaster: gets the unrecognised bounces of lists with unrecognized_bounces: site",
      ),
    pid_file: z
      .string()
      .min(1)
      .optional()
      .describe(
        "the master's pid file; default <state>/master.pid (under systemd: /run/qrunner/master.pid, its RuntimeDirectory=)",
      ),
    log: z
      .object({
        level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
        file: z.string().optional().describe("write JSON lines to this file instead of stdout"),
      })
      .strict()
      .default({}),
    runners: runnersSchema,
    queue: z
      .object({
        recycle: z
          .boolean()
          .default(true)
          .describe(
            "park finished entry files in qfiles/.spare and reuse them for new entries instead of creating and unlinking one per entry (faster on ext4 with or without a journal and on tmpfs: docs/performance.md)",
          ),
      })
      .strict()
      .default({}),
    master: z
      .object({
        stop_timeout: duration.default("30s").describe("grace before workers still running are killed"),
        stall_timeout: duration
          .default("5m")
          .describe("a worker with due entries and no progress this long is restarted"),
        restart_window: duration.default("10m").describe("max_restarts counts restarts within this window"),
        recovery_limit: z
          .number()
          .int()
          .min(1)
          .default(3)
          .describe("recoveries after a crash before an entry is shunted"),
      })
      .strict()
      .default({}),
    smtp: z
      .object({
        hosts: z
          .array(hostSchema)
          .min(1)
          .default([{ host: "127.0.0.1", port: 25 }]),
        fallback: z.array(fallbackSchema).default([]).describe("used only while every host above is down"),
        probe_max: duration.default("30s").describe("a down host is probed at least this often"),
        max_recipients: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(500)
          .describe("recipients per SMTP transaction"),
        helo: z.string().optional().describe("name sent in EHLO; default the machine's hostname"),
      })
      .strict()
      .default({}),
    backoff: z
      .object({
        schedule: z.array(duration).min(1).default(["1m", "5m", "15m", "1h", "4h"]),
        max_age: duration.default("5d"),
        jitter: z.number().min(0).max(1).default(0.1).describe("random spread of each wait, as a fraction"),
      })
      .strict()
      .default({}),
    intake: z
      .object({
        lmtp: z
          .union([z.string().transform((listen) => ({ listen })), lmtpSchema])
          .optional()
          .describe(
            "the master's LMTP listener: host:port or unix:/path, or { listen, mode, owner, group, ... }",
          ),
      })
      .strict()
      .default({}),
    metrics: z
      .object({ listen: z.string().optional().describe("host:port for Prometheus text exposition") })
      .strict()
      .default({}),
    web: z
      .object({
        listen: z
          .string()
          .optional()
          .describe(
            "host:port of the web console (e.g. 127.0.0.1:8025); absent: no console. TLS belongs to a reverse proxy (docs/web.md)",
          ),
        operators: z
          .array(
            z
              .object({
                name: z
                  .string()
                  .regex(
                    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
                    "letters, digits, '.', '_' and '-', at most 64 (no '@': that is a list moderator's login)",
                  )
                  .describe("the login name"),
                password_hash: z
                  .string()
                  .regex(/^scrypt\$/, "an scrypt hash from `qrunner web hash-password`")
                  .describe("the password's scrypt hash (`qrunner web hash-password` makes one)"),
              })
              .strict(),
          )
          .default([])
          .refine(
            (ops) => new Set(ops.map((o) => o.name)).size === ops.length,
            "operator names must be unique",
          )
          .describe(
            "accounts that see and act on everything; list moderators log in with their list password",
          ),
      })
      .strict()
      .default({}),
    cluster: clusterSchema
      .optional()
      .describe(
        "several masters sharing one qfiles directory (docs/cluster.md); absent: this master works every slice",
      ),
  })
  .strict();

/** The config as written (before defaults), and as in force (after defaults, paths absolute). */
export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type SmtpHostConfig = z.output<typeof hostSchema>;
export type FallbackHostConfig = z.output<typeof fallbackSchema>;
export type RunnersConfig = z.output<typeof runnersSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
export type EtcdConfig = z.output<typeof etcdSchema>;
export type WebConfig = ParsedConfig["web"];
export type RunnerName = keyof RunnersConfig;
export { RUNNER_NAMES } from "./runner-names.js";

/** The config in force: the parsed file plus where it came from; every path is absolute. */
export interface Config extends ParsedConfig {
  /** Absolute path of the config file. */
  readonly file: string;
  /** sha1 of the file's bytes: the config version shown by status. */
  readonly version: string;
}
