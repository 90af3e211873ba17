/** The schema of one list file, `lists/<list-address>.yaml`. */
import { z } from "zod";
import { duration, size } from "../config/schema-units.js";
import { ADDRESS_RE, LIST_ADDRESS_RE } from "./address-syntax.js";
import { addressProblem } from "./addresses.js";
import { PASSWORD_HASH_RE } from "./passwords.js";

export { ADDRESS_RE, LIST_ADDRESS_RE };

/**
 * A member or owner address: the same rule as inject --from and mail commands apply (no quotes,
 * blanks or shell characters), so a list file cannot hold an address the rest of qrunner refuses.
 */
export const address = z
  .string()
  .max(254)
  .regex(ADDRESS_RE, "not a plain mail address (local@domain)")
  .superRefine((a, ctx) => {
    // one message per address: the regex above has already said it is no address at all
    const problem = ADDRESS_RE.test(a) ? addressProblem(a) : null;
    if (problem !== null)
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `not an address qrunner accepts: ${problem}` });
  });

export const listSchema = z
  .object({
    address: z
      .string()
      .max(254)
      .regex(LIST_ADDRESS_RE, "a list address (letters, digits, '.', '_' and '-' before the @)")
      .refine((a) => !a.includes(".."), "a list address cannot contain '..'")
      .describe("the list's posting address; its local part names the list"),
    description: z
      .string()
      .max(200)
      .regex(/^[^\r\n]*$/, "one line")
      .optional(),
    owners: z.array(address).min(1).describe("who gets owner mail, held-post and bounce notices"),
    moderators: z
      .array(address)
      .default([])
      .describe("who may moderate held posts besides the owners (by mail, and in the web console)"),
    moderator_password: z
      .string()
      .max(256)
      .regex(PASSWORD_HASH_RE, "an scrypt hash as `qrunner list password` writes it (scrypt$N$r$p$salt$hash)")
      .optional()
      .describe("set with `qrunner list password LIST`; for `Approved:` and moderator logins"),
    members: z.array(address).default([]),
    members_file: z.string().optional().describe("one address a line, relative to the list file"),
    subject_prefix: z
      .string()
      .max(64)
      .regex(/^[^\r\n]*$/, "one line")
      .optional(),
    nonmembers: z.enum(["accept", "hold", "reject", "discard"]).default("hold"),
    max_size: size.default("1MB"),
    archive: z.boolean().default(true),
    archive_url: z.string().url().optional().describe("published as List-Archive"),
    verp: z
      .boolean()
      .default(false)
      .describe("one transaction per recipient with a signed VERP envelope sender"),
    verp_probes: z
      .boolean()
      .default(false)
      .describe("at the bounce threshold, mail the member a probe first; only the probe's bounce disables"),
    unrecognized_bounces: z
      .enum(["owners", "site", "discard"])
      .default("owners")
      .describe("where bounces nobody can read go: the owners, the site's site_owner, or nowhere"),
    max_rejections_per_hour: z
      .number()
      .int()
      .min(0)
      .default(20)
      .describe("rejection notices (size, nonmembers: reject) the list sends per hour, to anyone"),
    hold_expires: duration.default("14d").describe("held posts are discarded after this"),
    confirm_expires: duration.default("3d").describe("join/leave confirmation tokens expire after this"),
    max_replies_per_hour: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe("command replies to one address per hour"),
    bounce: z
      .object({
        threshold: z.number().min(1).default(5),
        stale_after: duration.default("7d"),
        temporary_weight: z
          .number()
          .min(0)
          .max(1)
          .default(0)
          .describe("what a temporary bounce adds to the score"),
        probe_expires: duration
          .default("7d")
          .describe("with verp_probes: a probe that has not bounced after this resets the score"),
      })
      .strict()
      .default({}),
  })
  .strict();

export type ListConfigParsed = z.output<typeof listSchema>;

/** A list as loaded: the parsed file, the members file merged in, names derived. */
export interface ListConfig extends ListConfigParsed {
  /** The list's local part (`dev` for dev@example.org). */
  readonly name: string;
  readonly domain: string;
  /** Absolute path of the list file. */
  readonly file: string;
  /** Members from `members` and `members_file`, as written, de-duplicated. */
  readonly allMembers: readonly string[];
}
