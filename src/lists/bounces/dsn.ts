/**
 * RFC 3464 delivery status notifications: the `message/delivery-status` body (also RFC 6533
 * `message/global-delivery-status`) is one block of per-message fields, then one block of
 * per-recipient fields for each recipient, blocks separated by blank lines.
 *
 * Which address names the recipient: `Original-Recipient` when it is present, of type rfc822 (or
 * utf-8) and a valid address, else `Final-Recipient`. Original-Recipient is the address as the sender
 * gave it (RFC 3464 2.3.1), that is, as it is on our list; Final-Recipient is where delivery ended
 * after aliasing and forwarding (2.3.2), which a member's forward makes an address we never sent to.
 *
 * What a recipient block means: `Action: failed` is permanent, `delayed` temporary; `delivered`,
 * `relayed` and `expanded` are not bounces. Only when Action is missing or unknown does the Status
 * class decide (5.x.x permanent, 4.x.x temporary, 2.x.x none), then the SMTP reply code in
 * Diagnostic-Code. A final `failed` stays permanent even with a 4.x.x status: the MTA has given up.
 */
import { cleanAddress, findStatus, sanitize } from "./address.js";

export type BounceKind = "permanent" | "temporary";

export interface DsnRecipient {
  address: string;
  kind: BounceKind;
  source: "Original-Recipient" | "Final-Recipient";
  action?: string;
  status?: string;
  diagnostic?: string;
  /** the Diagnostic-Code's type, lowercased: "smtp", or "x-unix" for a local delivery program */
  diagnosticType?: string;
}

export interface DsnReport {
  /** recipient blocks seen (with a Final- or Original-Recipient), bounced or not */
  blocks: number;
  /** the blocks that are bounces, with an address we could read */
  bounces: DsnRecipient[];
  /** blocks that are bounces but name no readable address */
  unreadable: number;
}

type Block = Map<string, string>;

const MAX_BLOCKS = 1000;

/** Split the delivery-status text into field blocks. A missing blank line before a new recipient is tolerated. */
export function parseBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  let cur: Block = new Map();
  let last: string | undefined;
  let statusAfterRecipient = false;
  const flush = (): void => {
    if (cur.size > 0) blocks.push(cur);
    cur = new Map();
    last = undefined;
  };
  for (const raw of text.split("\n")) {
    if (blocks.length >= MAX_BLOCKS) break;
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") {
      flush();
      statusAfterRecipient = false;
      continue;
    }
    if ((line[0] === " " || line[0] === "\t") && last !== undefined) {
      const prev = cur.get(last) ?? "";
      if (prev.length < 4000) cur.set(last, prev + " " + line.trim());
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const rawName = line.slice(0, colon).trimEnd();
    if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(rawName)) continue;
    const name = rawName.toLowerCase();
    const value = line.slice(colon + 1).trim();
    const isRecipientField = name === "final-recipient" || name === "original-recipient";
    // A second field of the same name, or a recipient field after per-message fields or after the
    // previous recipient's Action/Status, means the blank line between blocks is missing.
    // (Some MTAs write a recipient's fields in reverse, Action and Status before the recipient
    // fields: those stay one block unless the Action/Status came after a recipient field.)
    const startsNew = isRecipientField && (cur.has("reporting-mta") || statusAfterRecipient);
    if (cur.has(name) || startsNew) {
      flush();
      statusAfterRecipient = false;
    }
    if (
      (name === "action" || name === "status") &&
      (cur.has("final-recipient") || cur.has("original-recipient"))
    )
      statusAfterRecipient = true;
    cur.set(name, value);
    last = name;
  }
  flush();
  return blocks;
}

/** The address of a `type; address` field when its type is one we read as a mailbox. */
function typedAddress(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const semi = value.indexOf(";");
  if (semi < 0) {
    // no address-type at all; seen in the wild as a bare <addr> or addr
    return cleanAddress(value);
  }
  const type = value.slice(0, semi).trim().toLowerCase();
  if (type !== "rfc822" && type !== "utf-8") return undefined;
  return cleanAddress(value.slice(semi + 1));
}

/** What a block says about its recipient: permanent, temporary, or no bounce at all. */
export function classify(
  action: string | undefined,
  status: string | undefined,
  diagnostic: string | undefined,
): BounceKind | null {
  const a = (action ?? "").trim().toLowerCase();
  if (/^(fail|undeliver|bounce|reject|expire)/.test(a)) return "permanent";
  if (/^delay/.test(a)) return "temporary";
  if (/^(deliver|relay|expand)/.test(a)) return null;
  const cls = /^\s*([245])\./.exec(status ?? "")?.[1];
  if (cls === "5") return "permanent";
  if (cls === "4") return "temporary";
  if (cls === "2") return null;
  const code = /^(?:[^;]*;)?\s*([245])\d\d\b/.exec(diagnostic ?? "")?.[1];
  if (code === "5") return "permanent";
  if (code === "4") return "temporary";
  return null;
}

/** Drop the diagnostic-type ("smtp; ", "X-Postfix; ") and make it one printable line. */
function cleanDiagnostic(value: string): string {
  return sanitize(value.replace(/^[A-Za-z][A-Za-z0-9-]*\s*;\s*/, ""));
}

export function parseDeliveryStatus(text: string): DsnReport {
  const report: DsnReport = { blocks: 0, bounces: [], unreadable: 0 };
  for (const block of parseBlocks(text)) {
    const finalField = block.get("final-recipient");
    const originalField = block.get("original-recipient");
    if (finalField === undefined && originalField === undefined) continue; // per-message fields
    report.blocks++;
    const action = block.get("action");
    const rawStatus = block.get("status");
    const rawDiagnostic = block.get("diagnostic-code");
    const kind = classify(action, rawStatus, rawDiagnostic);
    if (kind === null) continue;
    const original = typedAddress(originalField);
    const final = typedAddress(finalField);
    const address = original ?? final;
    if (address === undefined) {
      report.unreadable++;
      continue;
    }
    const r: DsnRecipient = {
      address,
      kind,
      source: original !== undefined ? "Original-Recipient" : "Final-Recipient",
    };
    if (action !== undefined && action.trim() !== "") r.action = sanitize(action.trim().toLowerCase(), 60);
    const status =
      /^\s*([245]\.\d{1,3}\.\d{1,3})/.exec(rawStatus ?? "")?.[1] ?? findStatus(rawDiagnostic ?? "");
    if (status !== undefined) r.status = status;
    // without a Diagnostic-Code, a comment after the Status ("5.0.0 (Remote SMTP server has rejected
    // address)") is the only words we have
    const statusComment = (rawStatus ?? "").replace(/^\s*[245]\.\d{1,3}\.\d{1,3}/, "").trim();
    const words = rawDiagnostic?.trim() || statusComment;
    if (words !== "") r.diagnostic = cleanDiagnostic(words);
    const type = /^\s*([A-Za-z][A-Za-z0-9-]{0,30})\s*;/.exec(rawDiagnostic ?? "")?.[1];
    if (type !== undefined) r.diagnosticType = type.toLowerCase();
    report.bounces.push(r);
  }
  return report;
}
