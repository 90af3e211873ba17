/**
 * The bounce runner: mail to a list's -bounces address (a VERP address names the member directly;
 * otherwise the bounce detector reads the DSN or the MTA's text), and bounce events that outgoing
 * synthesised from 5xx replies. Each bounce scores the member (at most once a day); at the list's
 * threshold the member is disabled and the member and the owners get one notice each. Automatic
 * replies and success reports are no bounces: logged and dropped. Unrecognised bounces are kept in
 * `shunt` for inspection and counted. With `idle_only`, it works only while the machine is idle and
 * the incoming and outgoing queues are empty: bounces wait, never lost.
 */
import os from "node:os";
import type { Logger } from "pino";
import { normalizeAddress } from "../lists/addresses.js";
import { scanBounce, type BounceScan } from "../lists/bounces/detect.js";
import { applyBounce, policyFromList, type BounceKind } from "../lists/bounces/score.js";
import { isMember } from "../lists/members.js";
import { bounceDisabledMember, bounceDisabledOwners } from "../lists/notice-texts.js";
import type { Notice } from "../lists/notices.js";
import type { ListConfig } from "../lists/schema.js";
import { ListStateStore } from "../lists/state.js";
import { hasEntries } from "../queue/inspect.js";
import type { Entry } from "../queue/types.js";
import { QrunnerError } from "../util/errors.js";
import type { Handler, HandleResult } from "./base.js";
import type { RunnerContext } from "./context.js";
import { queueNotice } from "./notify.js";

/** A bounce the detector could not read: kept (shunted) for an operator, never dropped. */
export class UnrecognisedBounceError extends QrunnerError {
  constructor(reason: string) {
    super("EBOUNCE_UNRECOGNISED", `unrecognised bounce (kept for inspection): ${reason}`);
  }
}

/**
 * Why a message the detector read is positively no delivery failure (an automatic reply, a DSN that
 * lists only delivered or relayed recipients), or null. Messages it could not read at all are not
 * this: a VERP bounce in an unknown layout still names its member, and other unreadable bounces are
 * kept for an operator.
 */
function notABounce(scan: BounceScan): string | null {
  return scan.notBounce !== undefined ? (scan.reason ?? scan.notBounce) : null;
}

interface Finding {
  address: string;
  kind: BounceKind;
  reason: string;
}

export class BounceRunner implements Handler {
  constructor(private readonly ctx: RunnerContext) {}

  async waitReason(): Promise<string | null> {
    const { config } = this.ctx.settings();
    const { idle_only, max_loadavg } = config.runners.bounce;
    if (!idle_only) return null;
    const load = os.loadavg()[0] ?? 0;
    if (load >= max_loadavg) return `waiting for idle: load average ${load.toFixed(2)} >= ${max_loadavg}`;
    for (const q of ["incoming", "outgoing"])
      if (await hasEntries(config.qfiles, q)) return `waiting for idle: the ${q} queue is not empty`;
    return null;
  }

  async handle(entry: Entry, log: Logger): Promise<HandleResult> {
    const { lists } = this.ctx.settings();
    const list = entry.meta.list ? lists.get(entry.meta.list.toLowerCase()) : undefined;
    if (!list)
      throw new Error(`bounce for a list that does not exist (any more): ${entry.meta.list ?? "none"}`);
    const findings = await this.findings(entry, list, log);
    await this.score(entry, list, findings, log);
  }

  private async findings(entry: Entry, list: ListConfig, log: Logger): Promise<Finding[]> {
    const extra = entry.meta.extra ?? {};
    const event = extra["event"];
    if (entry.meta.kind === "bounce-event" && event && typeof event === "object" && !Array.isArray(event)) {
      const recipient = typeof event["recipient"] === "string" ? event["recipient"] : "";
      const kind: BounceKind = event["kind"] === "temporary" ? "temporary" : "permanent";
      return [
        { address: recipient, kind, reason: String(event["message"] ?? "rejected by the SMTP server") },
      ];
    }
    const scan = await scanBounce(entry.message);
    const notBounce = notABounce(scan);
    if (notBounce !== null) {
      // an out-of-office reply or a success report sent to the bounce address (often the VERP one:
      // autoresponders answer the envelope sender) says nothing about the member's mailbox
      log.info({ reason: notBounce, verpMember: extra["verpMember"] ?? null }, "not a bounce; dropped");
      return [];
    }
    const verp = typeof extra["verpMember"] === "string" ? extra["verpMember"] : undefined;
    if (verp) {
      // VERP names the member; the DSN, when readable, says whether it was only a delay
      const onlyDelay = scan.recognized && scan.permanent.length === 0 && scan.temporary.length > 0;
      return [
        {
          address: verp,
          kind: onlyDelay ? "temporary" : "permanent",
          reason: scan.details[0]?.diagnostic ?? "VERP bounce",
        },
      ];
    }
    if (!scan.recognized) {
      await new ListStateStore(this.ctx.settings().config.state, list.address).update((s) => {
        s.unrecognisedBounces++;
      });
      log.warn({ reason: scan.reason }, "unrecognised bounce");
      throw new UnrecognisedBounceError(scan.reason ?? "no delivery-status part and no known text pattern");
    }
    return scan.details.map((d) => ({
      address: d.address,
      kind: d.kind,
      reason: d.diagnostic ?? d.status ?? scan.format,
    }));
  }

  private async score(
    entry: Entry,
    list: ListConfig,
    findings: readonly Finding[],
    log: Logger,
  ): Promise<void> {
    const { config } = this.ctx.settings();
    const policy = policyFromList(list.bounce);
    const now = Date.now();
    // notices are queued inside the update, before the new scores are written: a crash in between
    // re-runs the bounce, which rewrites the same notice files instead of losing them
    await new ListStateStore(config.state, list.address).update(async (state) => {
      const out: Notice[] = [];
      for (const f of findings) {
        const addr = normalizeAddress(f.address);
        if (!isMember(list, state, addr)) {
          log.info({ address: addr, kind: f.kind }, "bounce for a non-member ignored");
          continue;
        }
        const before = state.members[addr] ?? { score: 0 };
        const r = applyBounce(before, { kind: f.kind, at: now }, policy);
        state.members[addr] = r.state;
        log.info(
          { member: addr, kind: f.kind, counted: r.counted, score: r.state.score, reason: f.reason },
          "bounce scored",
        );
        if (r.disabledNow) {
          const b = { member: addr, score: r.state.score, reason: f.reason };
          out.push(bounceDisabledMember(list, b), bounceDisabledOwners(list, b));
          log.warn({ member: addr, score: r.state.score }, "member disabled after bounces");
        }
      }
      for (const [index, n] of out.entries())
        await queueNotice(this.ctx.queues, list.address, n, { entry, index });
    });
  }
}
