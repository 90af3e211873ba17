/**
 * What one bounce entry says, for the bounce runner (./bounce.ts) to score: the members it names,
 * each with hard or soft and the reason. Three sources: a bounce event that outgoing queued for a
 * 5xx reply (its words classified like a notice's), a bounce to a signed VERP address (the address
 * names the member; the notice, when readable, says hard, soft or a delay), and any other bounce
 * (the detector reads the notice). Complaints, automatic replies and success reports give nothing
 * (counted or logged); unrecognised bounces go to ./bounce-unrecognised.ts.
 */
import type { Logger } from "pino";
import { routeRecipient, sameAddress } from "../lists/addresses.js";
import { scanBounce, type BounceReason, type BounceScan } from "../lists/bounces/detect.js";
import { classifyReply } from "../lists/bounces/reason.js";
import type { BounceKind } from "../lists/bounces/score.js";
import type { ListConfig } from "../lists/schema.js";
import type { ListState } from "../lists/state-shape.js";
import { ListStateStore } from "../lists/state.js";
import { verifyVerpTag, type VerpKeys } from "../lists/verp.js";
import type { Entry } from "../queue/types.js";
import { handleUnrecognised } from "./bounce-unrecognised.js";
import type { RunnerContext } from "./context.js";

export interface Finding {
  address: string;
  kind: BounceKind;
  /** words for the log and the notices (the diagnostic) */
  diagnostic: string;
  /**
   * the classification (user unknown, mailbox full, delayed, ...), for scoring; absent only when
   * nothing names a cause of a permanent failure (a 5xx at delivery in unspecific words, a VERP
   * bounce whose notice cannot be read): the kind decides, and both count as hard
   */
  reason?: BounceReason;
  /** the bounce of a bounce probe (verp_probes) */
  probe?: boolean;
}

/** Count something in the list's state (complaints, forged bounces). */
function count(ctx: RunnerContext, list: ListConfig, fn: (s: ListState) => void): Promise<void> {
  return new ListStateStore(ctx.settings().config.state, list.address).update(fn);
}

/** The findings of one bounce entry, [] when there is nothing to score. */
export async function readFindings(
  ctx: RunnerContext,
  verpKeys: VerpKeys,
  entry: Entry,
  list: ListConfig,
  log: Logger,
): Promise<Finding[]> {
  const extra = entry.meta.extra ?? {};
  const event = extra["event"];
  if (entry.meta.kind === "bounce-event" && event && typeof event === "object" && !Array.isArray(event)) {
    const recipient = typeof event["recipient"] === "string" ? event["recipient"] : "";
    const diagnostic = String(event["message"] ?? "rejected by the SMTP server");
    const probe =
      typeof event["sender"] === "string" && isProbeSender(ctx, verpKeys, list, event["sender"], recipient);
    return [
      {
        address: recipient,
        diagnostic,
        ...eventClass(event["kind"], diagnostic),
        ...(probe ? { probe: true } : {}),
      },
    ];
  }
  const scan = await scanBounce(entry.message);
  const verp = typeof extra["verpMember"] === "string" ? extra["verpMember"] : undefined;
  if (scan.notBounce === "complaint") {
    // a complaint says the member did not want the mail, not that the address is dead
    await count(ctx, list, (s) => {
      s.complaints = (typeof s.complaints === "number" ? s.complaints : 0) + 1;
    });
    log.warn(
      { about: scan.complaint?.address ?? verp ?? null, feedbackType: scan.complaint?.feedbackType ?? null },
      "complaint (feedback report) counted; not a bounce",
    );
    return [];
  }
  if (scan.notBounce !== undefined) {
    // an out-of-office reply or a success report sent to the bounce address (often the VERP one:
    // autoresponders answer the envelope sender) says nothing about the member's mailbox
    log.info({ reason: scan.reason ?? scan.notBounce, verpMember: verp ?? null }, "not a bounce; dropped");
    return [];
  }
  if (verp) return verpFinding(ctx, verpKeys, entry, list, verp, scan, log);
  if (!scan.recognized) {
    const reason = scan.reason ?? "no delivery-status part and no known text pattern";
    await handleUnrecognised(ctx.queues, ctx.settings().config, list, entry, reason, log);
    return [];
  }
  return scan.details.map((d) => ({
    address: d.address,
    kind: d.kind,
    diagnostic: d.diagnostic ?? d.status ?? scan.format,
    reason: d.reason,
  }));
}

/**
 * A refusal our own delivery got: when the reply's words name a cause, they decide hard or soft as a
 * notice's would ("550 5.7.1 spam" is no dead address); when they name none, a permanent refusal of
 * the recipient counts as hard, as Mailman counts any 5xx at delivery. A temporary one is a delay.
 */
function eventClass(kind: unknown, words: string): { kind: BounceKind; reason?: BounceReason } {
  const { reason, hard } = classifyReply(words);
  if (kind === "temporary") return { kind: "temporary", reason: reason === "undefined" ? "delayed" : reason };
  if (reason === "undefined") return { kind: "permanent" };
  return { kind: hard ? "permanent" : "temporary", reason };
}

/** Whether `sender` is the signed probe VERP address of `list` for `recipient` (a probe refused at delivery). */
function isProbeSender(
  ctx: RunnerContext,
  verpKeys: VerpKeys,
  list: ListConfig,
  sender: string,
  recipient: string,
): boolean {
  const route = routeRecipient(sender, ctx.settings().lists);
  if (route?.list !== list || route.verpMember === undefined || route.verpTag === undefined) return false;
  if (!sameAddress(route.verpMember, recipient)) return false;
  const key = verpKeys.get(ctx.settings().config.state);
  const v = verifyVerpTag(key, list.address, route.verpMember, route.verpTag, Date.now());
  return v.ok && v.kind === "probe";
}

/** A bounce to a VERP address: scored only when its tag verifies, as of when it was received. */
async function verpFinding(
  ctx: RunnerContext,
  verpKeys: VerpKeys,
  entry: Entry,
  list: ListConfig,
  member: string,
  scan: BounceScan,
  log: Logger,
): Promise<Finding[]> {
  const tag = entry.meta.extra?.["verpTag"];
  const key = verpKeys.get(ctx.settings().config.state);
  const v = verifyVerpTag(
    key,
    list.address,
    member,
    typeof tag === "string" ? tag : undefined,
    entry.meta.received,
  );
  if (!v.ok) {
    await count(ctx, list, (s) => {
      s.forgedBounces = (typeof s.forgedBounces === "number" ? s.forgedBounces : 0) + 1;
    });
    log.warn({ verpMember: member, problem: v.problem, reason: v.reason }, "VERP bounce not scored");
    return [];
  }
  // VERP names the member; the notice, when readable, says hard, soft or only a delay
  // (an unreadable one counts as hard, as it always did)
  const failures = scan.details.filter((d) => d.reason !== "delayed");
  const first = failures[0] ?? scan.details[0];
  return [
    {
      address: member,
      kind: first?.kind ?? "permanent",
      diagnostic: first?.diagnostic ?? "VERP bounce",
      ...(first !== undefined ? { reason: first.reason } : {}),
      ...(v.kind === "probe" ? { probe: true } : {}),
    },
  ];
}
