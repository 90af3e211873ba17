/** `intake:` of `qrunner.yaml`: the master's LMTP listener. */
import { z } from "zod";
import { duration, size } from "./schema-units.js";

/** `intake.lmtp` in full; the string form is `{ listen }`. Limits default in src/intake/lmtp.ts. */
export const lmtpSchema = z
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
