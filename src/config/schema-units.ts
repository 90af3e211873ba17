/**
 * The value types of the config and list schemas: durations and sizes written as text (`30s`, `1MB`),
 * parsed to milliseconds and bytes.
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
