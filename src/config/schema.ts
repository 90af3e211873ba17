/**
 * The one schema of `qrunner.yaml`: every key, its meaning (`describe`) and its default.
 * Paths are resolved relative to the config file by the loader, not here.
 */
import { z } from "zod";
import { parseDuration, parseSize } from "../util/units.js";

/** A duration such as `10s`, `5m`, `5d` (bare numbers are seconds), parsed to milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `not a duration: ${JSON.stringify(v)} (use e.g. 30s, 5m, 1h, 5d)`,
    });
    return z.NEVER;
  }
  return ms;
});

/** A size such as `1MB`, `512KiB` (bare numbers are bytes), parsed to bytes. */
export const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const b = parseSize(v);
  if (b === undefined) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `not a size: ${JSON.stringify(v)} (use e.g. 500KB, 1MB, 10MiB)`,
    });
    return z.NEVER;
  }
  return b;
});

/** `intake.lmtp` in full; the string form is `{ listen }`. Limits default in src/intake/lmtp.ts. */
const lmtpSchema = z
  .object({
    listen: z.string().describe("host:port, or unix:/path for a Unix socket"),
    mode: z
      .string()
      .regex(/^0?[0-7]{3}$/, 'octal digits in quotes, e.g. "0660"')
      .transform((m) => parseInt(m, 8))
      .optional()
      .describe('the Unix socket\'s mode, a quoted octal string (default "0660")'),
    owner: z
      .union([z.string().min(1), z.number().int().min(0)])
      .optional()
      .describe("the Unix socket's owner"),
    group: z
      .union([z.string().min(1), z.number().int().min(0)])
      .optional()
      .describe("the Unix socket's group"),
    max_connections: z.number().int().min(1).max(10_000).optional().describe("connections at once (50)"),
    max_session: duration.optional().describe("a connection's whole length; then 421 (10m)"),
    max_transactions: z.number().int().min(1).optional().describe("messages per connection; then 421 (1000)"),
    max_buffered: size
      .optional()
      .describe("message bytes held in memory for all connections together (200MiB)"),
  })
  .strict();

const runnerBase = {
  instances: z.number().int().min(1).max(64).default(1).describe("worker processes; each takes slice K of N"),
  sleep: duration
    .default("1s")
    .describe("safety-net poll interval; a file landing in the queue wakes the runner at once"),
  nice: z.number().int().min(-20).max(19).default(0).describe("process priority of the runner's workers"),
  max_restarts: z
    .number()
    .int()
    .min(0)
    .default(10)
    .describe("restarts within restart_window before the worker stays down"),
  concurrency: z.number().int().min(1).max(256).default(1).describe("entries handled at once by one worker"),
};

const runner = z.object(runnerBase).strict();

export const runnersSchema = z
  .object({
    // several posts at once: each waits on its successors' fsyncs, and concurrent ones share them
    incoming: z
      .object({ ...runnerBase, concurrency: runnerBase.concurrency.default(8) })
      .strict()
      .default({}),
    outgoing: z
      .object({
        ...runnerBase,
        instances: z
          .union([z.literal("auto"), z.number().int().min(1).max(64)])
          .default("auto")
          .describe(
            "auto: one worker per SMTP host, slice sized by weight; N: N equal slices over all hosts",
          ),
        concurrency: z
          .number()
          .int()
          .min(1)
          .max(256)
          .default(8)
          .describe("SMTP transactions in flight per worker"),
      })
      .strict()
      .default({}),
    bounce: z
      .object({
        ...runnerBase,
        idle_only: z.boolean().default(false).describe("work only while the machine is idle"),
        max_loadavg: z
          .number()
          .min(0)
          .default(1.0)
          .describe("with idle_only: the 1-minute load average must be below this"),
      })
      .strict()
      .default({}),
    command: runner.default({}),
    archive: z
      .object({ ...runnerBase, nice: runnerBase.nice.default(10), sleep: duration.default("10s") })
      .strict()
      .default({}),
    // deliveries wait on SMTP hosts: several at once, as outgoing does
    backoff: z
      .object({ ...runnerBase, concurrency: runnerBase.concurrency.default(8) })
      .strict()
      .default({}),
  })
  .strict()
  .default({});

export const hostSchema = z
  .object({
    host: z.string().min(1).describe("SMTP server name or address"),
    port: z.number().int().min(1).max(65535).default(25),
    weight: z.number().positive().default(1).describe("share of the outgoing hash space"),
    name: z.string().optional().describe("a label for logs and status; default host:port"),
    secure: z.boolean().default(false).describe("TLS from the first byte (port 465)"),
    starttls: z
      .enum(["opportunistic", "require", "never"])
      .default("opportunistic")
      .describe("STARTTLS policy"),
    ca: z.string().optional().describe("PEM file of the CA to trust for this host"),
    tls_reject_unauthorized: z.boolean().default(true),
    auth: z
      .object({
        user: z.string().min(1),
        pass_env: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name")
          .optional()
          .describe("the environment variable holding the password (never in the file, never logged)"),
        pass_credential: z
          .string()
          .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, "a credential name (letters, digits, '_', '.', '-')")
          .optional()
          .describe(
            "the systemd credential holding the password (LoadCredential=NAME:FILE): read from $CREDENTIALS_DIRECTORY/NAME",
          ),
      })
      .strict()
      .refine(
        (a) => (a.pass_env === undefined) !== (a.pass_credential === undefined),
        "give the password's source: exactly one of pass_env (an environment variable) or pass_credential (a systemd credential)",
      )
      .optional(),
    allow_plaintext_auth: z
      .boolean()
      .default(false)
      .describe(
        "send `auth` without TLS (tests only: a man in the middle can read the password); warned at every start",
      ),
    pool_size: z.number().int().min(1).max(64).default(4).describe("connections kept open to this host"),
    connect_timeout: duration.default("10s"),
    timeout: duration.default("60s").describe("greeting and per-command socket timeout"),
  })
  .strict();

export const fallbackSchema = hostSchema.omit({ weight: true });

/** Where cluster mode keeps its node registry and slice leases: an etcd v3 cluster. */
export const etcdSchema = z
  .object({
    endpoints: z
      .array(
        z
          .string()
          .regex(/^https?:\/\/[^\s/]+\/?$/, "an etcd client URL such as http://etcd1.example.net:2379")
          .describe("an etcd member's client URL"),
      )
      .min(1)
      .describe("the etcd members' client URLs (all of them: the client fails over between them)"),
    prefix: z
      .string()
      .regex(/^\/[\x21-\x7e]*\/$/, "a key prefix starting and ending with '/', e.g. /qrunner/")
      .default("/qrunner/")
      .describe("the keys of this cluster in etcd; give clusters sharing one etcd their own prefix"),
    tls: z
      .object({
        ca: z.string().describe("CA certificate (PEM) that signed the etcd members' certificates"),
        cert: z.string().optional().describe("client certificate (PEM), when etcd asks for one"),
        key: z.string().optional().describe("the client certificate's private key (PEM)"),
      })
      .strict()
      .refine(
        (t) => (t.cert === undefined) === (t.key === undefined),
        "give both `cert` and `key`, or neither",
      )
      .optional()
      .describe("TLS to etcd (https:// endpoints); paths relative to the config file"),
  })
  .strict();

/** The error for a `cluster:` section written for the lock-file leases of earlier releases. */
export const ETCD_REQUIRED =
  "cluster mode now keeps its node registry and slice leases in etcd: add `etcd: { endpoints: [...] }` " +
  "(the lock files in qfiles/.cluster are no longer used; see docs/cluster.md)";

/**
 * Cluster mode: the nodes (masters with their own state directories) sharing one `qfiles` split
 * `slices` equal slices between them; who holds which slice is kept in etcd, under leases with a
 * TTL of `lease`. Every node must use the same `slices` (a node refuses to start otherwise).
 */
export const clusterSchema = z
  .object({
    node: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
        "letters, digits, '.', '_' and '-', at most 64, not starting with '.'",
      )
      .optional()
      .describe("this node's name, unique in the cluster; default the host name"),
    slices: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(16)
      .describe("slices of the hash space the nodes share out"),
    weight: z
      .number()
      .positive()
      .default(1)
      .describe("this node's share of the slices relative to the other live nodes"),
    lease: duration
      .refine((ms) => ms >= 3000, "must be at least 3s (the node fences its workers at half of it)")
      .refine((ms) => ms % 1000 === 0, "must be whole seconds (etcd lease TTLs are in seconds)")
      .default("15s")
      .describe(
        "TTL of this node's etcd lease: a node that stops renewing it loses its slices this long after",
      ),
    etcd: etcdSchema
      .optional()
      .describe("the etcd cluster holding the node registry and slice leases (required)"),
  })
  .strict()
  .transform((c, ctx) => {
    if (c.etcd === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: ETCD_REQUIRED });
      return z.NEVER;
    }
    return { ...c, etcd: c.etcd };
  });

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
