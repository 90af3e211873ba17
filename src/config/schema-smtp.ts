/** The SMTP hosts of `smtp.hosts` and `smtp.fallback`: address, TLS policy, auth, pool and timeouts. */
import { z } from "zod";
import { duration } from "./schema-units.js";

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
