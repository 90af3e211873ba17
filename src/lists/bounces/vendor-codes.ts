/**
 * Error codes that a provider documents and writes into its replies, more precise than the SMTP
 * status beside them. Orange and La Poste (France) end each refusal with a code such as
 * `LPN007_416`, `OFR_506` or `OFR004_405 [405]`: the last three digits name the cause (416 an
 * invalid recipient, 417 a full mailbox, 426 a blocked account, ...), whatever the status says
 * (Orange answers "550 5.5.0" for most of them). The table follows Orange's published list as
 * Sisimai condenses it (lib/sisimai/rhost/franceptt.rb, BSD-2; credit to its authors); codes that
 * mean "try later" without a cause are left out, so the words and status decide those.
 */
import type { BounceReason } from "./reason.js";

const ORANGE: Readonly<Record<string, BounceReason>> = {
  "101": "blocked",
  "102": "blocked",
  "103": "blocked",
  "104": "toomanyconn",
  "305": "securityerror",
  "401": "blocked",
  "402": "securityerror",
  "403": "rejected",
  "405": "rejected",
  "415": "rejected",
  "416": "userunknown",
  "417": "mailboxfull",
  "418": "userunknown",
  "420": "suspend",
  "421": "rejected",
  "426": "suspend",
  "505": "systemerror",
  "506": "spamdetected",
  "510": "blocked",
  "514": "mesgtoobig",
  "517": "policyviolation",
  "999": "blocked",
};

/** `LPN007_416`, `LPNAAA_101`, `OFR_506`, `OUK_513`, `OFR005-104`: a prefix, then the code last. */
const ORANGE_CODE = /\b(?:LPNAAA|LPN|OFR|OUK)(?:_\d{3}|\d{3}[-_]\d{3})\b/i;

/** The reason a provider's own error code names, or undefined. */
export function reasonFromVendorCode(text: string | undefined): BounceReason | undefined {
  if (text === undefined) return undefined;
  const m = ORANGE_CODE.exec(text);
  return m === null ? undefined : ORANGE[m[0].slice(-3)];
}
