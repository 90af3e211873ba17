/**
 * Amazon SES notifications delivered by mail (SNS email subscriptions): the body is a JSON object,
 * its `Message` the SES event as a JSON string. `notificationType` Bounce lists `bouncedRecipients`
 * (address, action, status, diagnosticCode), Complaint `complainedRecipients`, Delivery nobody.
 * JSON.parse is linear; the text is capped by the caller (./decode.ts).
 */
import { cleanAddress, sanitize } from "./address.js";
import type { DsnRecipient } from "./dsn.js";

export type SesEvent =
  | { type: "bounce"; recipients: DsnRecipient[] }
  | { type: "complaint"; address?: string; feedbackType?: string }
  | { type: "delivery" };

type Json = Record<string, unknown>;

function parseObject(text: string): Json | undefined {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start < 0 || end <= start) return undefined;
  const body = text.slice(start, end + 1);
  // mail gateways fold long JSON lines as "!\n " (a line-length fix-up): undo it before parsing
  for (const candidate of [body, body.replace(/!\r?\n /g, "")]) {
    try {
      const v: unknown = JSON.parse(candidate);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Json;
    } catch {
      // try the next form
    }
  }
  return undefined;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const list = (v: unknown): Json[] =>
  Array.isArray(v) ? v.filter((x): x is Json => x !== null && typeof x === "object") : [];

/** The SES event in a notification body, or undefined when the text is none. */
export function parseSesNotification(text: string): SesEvent | undefined {
  if (!text.includes("notificationType") && !text.includes("eventType")) return undefined;
  let obj = parseObject(text);
  const inner = str(obj?.["Message"]);
  if (inner !== undefined) obj = parseObject(inner);
  if (obj === undefined) return undefined;
  const type = (str(obj["notificationType"]) ?? str(obj["eventType"]) ?? "").toLowerCase();
  if (type === "delivery") return { type: "delivery" };
  if (type === "complaint") {
    const c = (obj["complaint"] ?? {}) as Json;
    const first = list(c["complainedRecipients"])[0];
    const event: SesEvent = { type: "complaint" };
    const address = cleanAddress(str(first?.["emailAddress"]));
    if (address !== undefined) event.address = address;
    const fb = str(c["complaintFeedbackType"]);
    if (fb !== undefined) event.feedbackType = sanitize(fb.toLowerCase(), 40);
    return event;
  }
  if (type !== "bounce") return undefined;
  const b = (obj["bounce"] ?? {}) as Json;
  const permanent = (str(b["bounceType"]) ?? "").toLowerCase() !== "transient";
  const recipients: DsnRecipient[] = [];
  for (const r of list(b["bouncedRecipients"])) {
    const address = cleanAddress(str(r["emailAddress"]));
    if (address === undefined) continue;
    const d: DsnRecipient = {
      address,
      kind: permanent ? "permanent" : "temporary",
      source: "Final-Recipient",
    };
    const status = str(r["status"]);
    if (status !== undefined && /^[245]\.\d{1,3}\.\d{1,3}$/.test(status)) d.status = status;
    const action = str(r["action"]);
    if (action !== undefined) d.action = sanitize(action.toLowerCase(), 60);
    const diag = str(r["diagnosticCode"]);
    if (diag !== undefined) d.diagnostic = sanitize(diag.slice(0, 4000));
    recipients.push(d);
  }
  return { type: "bounce", recipients };
}
