/** Where an LMTP recipient goes: the one place it is judged, at RCPT and again after DATA. */
import { describeError } from "../util/errors.js";
import type { VerpKeys } from "../lists/verp.js";
import { routeAddress, verpProblem } from "./inject.js";
import type { IntakeSettings } from "./lmtp-options.js";
import type { RecipientVerdict } from "./transaction.js";

/**
 * A list address that exists, and for a VERP bounce address a tag that verifies (an unsigned, forged
 * or stale one is refused, so a stranger cannot make a member's bounces up). Judged again after DATA
 * because the lists may have changed in between.
 */
export function validateRecipient(
  address: string,
  settings: IntakeSettings,
  verpKeys: VerpKeys,
): RecipientVerdict {
  const routed = routeAddress(address, settings.lists);
  if (!routed) return { accept: false, code: 550, text: `no such list or address: ${address}` };
  let refusal: string | null;
  try {
    refusal = verpProblem(routed, settings.config.state, verpKeys);
  } catch (err) {
    return { accept: false, code: 451, text: `cannot check the VERP address now: ${describeError(err)}` };
  }
  if (refusal !== null) return { accept: false, code: 550, text: refusal };
  return { accept: true, routed };
}
