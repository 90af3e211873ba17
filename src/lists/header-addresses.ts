/** Mailbox addresses out of an address header (To, Cc, From, Return-Path), with nodemailer's parser. */
import addressparser from "nodemailer/lib/addressparser/index.js";

/** The addr-specs of a header value, in order; display names, comments and groups are dropped. */
export function extractAddresses(value: string): string[] {
  // bounded: a header value over 64 KiB is not an address list we need to read in full
  const v = value.length > 65536 ? value.slice(0, 65536) : value;
  try {
    return addressparser(v, { flatten: true })
      .map((a) => a.address.trim())
      .filter((a) => a.length > 0);
  } catch {
    return [];
  }
}
