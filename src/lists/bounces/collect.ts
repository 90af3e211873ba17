/**
 * Gathering a notice's findings: one per address (a failure outranks a delay), then each given its
 * reason and its hard/soft kind (./reason.ts), and the scan's result.
 */
import { findStatus } from "./address.js";
import type { BounceDetail, BounceFormat, BounceScan } from "./detect.js";
import { classifyReason, isHardReason, smtpCommand, type BounceReason } from "./reason.js";

/**
 * Findings in order of appearance, one per address; a permanent failure outranks a temporary one.
 * Each gets its reason (./reason.ts) from its own words and status, else from the notice's text, and
 * its kind from the reason: hard reasons are permanent, every other failure temporary, and a delay
 * (a temporary finding, Action: delayed) stays temporary with reason "delayed".
 */
export class Collector {
  private readonly byAddress = new Map<string, BounceDetail>();

  constructor(private readonly notice: string) {}

  get size(): number {
    return this.byAddress.size;
  }

  add(f: BounceDetail): void {
    const d: BounceDetail = { address: f.address, kind: f.kind, source: f.source };
    if (f.status !== undefined) d.status = f.status;
    if (f.action !== undefined) d.action = f.action;
    if (f.diagnostic !== undefined) d.diagnostic = f.diagnostic;
    if (f.diagnosticType !== undefined) d.diagnosticType = f.diagnosticType;
    const existing = this.byAddress.get(d.address);
    if (existing === undefined || (existing.kind === "temporary" && d.kind === "permanent"))
      this.byAddress.set(d.address, d);
  }

  private classify(d: BounceDetail): void {
    if (d.kind === "temporary" || (d.action ?? "").startsWith("delay")) {
      d.kind = "temporary";
      d.reason = "delayed";
      return;
    }
    const command = smtpCommand(d.diagnostic) ?? smtpCommand(this.notice);
    // a generic X.0.0 Status says less than the code in the server's words ("550 #5.1.0 Address rejected")
    const spoken = findStatus(d.diagnostic ?? "");
    const status =
      d.status !== undefined && d.status.endsWith(".0.0") && spoken !== undefined && !spoken.endsWith(".0.0")
        ? spoken
        : d.status;
    // "Action: expired" (SendGrid): the MTA gave up retrying, whatever the last error was;
    // "Diagnostic-Code: X-Unix; ..." is a local delivery program's failure (procmail, a pipe)
    let reason: BounceReason = (d.action ?? "").startsWith("expire")
      ? "expired"
      : d.diagnosticType === "x-unix"
        ? "mailererror"
        : classifyReason({ text: d.diagnostic, status, command });
    if (reason === "undefined" || (d.diagnostic === undefined && d.status === undefined)) {
      // the notice is the reporting MTA's own summary: a generic X.0.0 beside it says nothing more
      const own = status?.endsWith(".0.0") === true ? undefined : status;
      reason = classifyReason({ text: this.notice, status: own, command });
    }
    d.reason = reason;
    d.kind = isHardReason(reason, status, d.diagnostic ?? this.notice) ? "permanent" : "temporary";
  }

  result(format: BounceFormat): BounceScan {
    const details = [...this.byAddress.values()];
    for (const d of details) this.classify(d);
    return {
      recognized: details.length > 0,
      format,
      permanent: details.filter((d) => d.kind === "permanent").map((d) => d.address),
      temporary: details.filter((d) => d.kind === "temporary").map((d) => d.address),
      details,
    };
  }
}
