/**
 * Gathering a notice's findings: one per address (a failure outranks a delay), then each given its
 * reason and its hard/soft kind (./reason.ts), and the scan's result.
 */
import { findStatus } from "./address.js";
import type { BounceDetail, BounceFinding, BounceFormat, BounceScan } from "./detect.js";
import { classifyReason, isHardReason, smtpCommand, type BounceReason } from "./reason.js";

/**
 * Findings in order of appearance, one per address; a permanent failure outranks a temporary one.
 * Each gets its reason (./reason.ts) from its own words and status, else from the notice's text, and
 * its kind from the reason: hard reasons are permanent, every other failure temporary, and a delay
 * (a temporary finding, Action: delayed) stays temporary with reason "delayed".
 */
export class Collector {
  private readonly byAddress = new Map<string, BounceFinding>();

  private innerScan: BounceScan | undefined;

  /**
   * `notice`: the notice's own text, for reasons a recipient's words do not give; `inner`: reads the
   * returned message as a notice, for reasons neither gives (called at most once, only then).
   */
  constructor(
    private readonly notice: string,
    private readonly inner?: () => BounceScan,
  ) {}

  /** What the returned message, read as a notice, says of this address (a reason other than undefined). */
  private innerDetail(address: string): BounceDetail | undefined {
    if (this.inner === undefined) return undefined;
    this.innerScan ??= this.inner();
    const key = address.toLowerCase();
    const d = this.innerScan.details.find((x) => x.address.toLowerCase() === key);
    return d === undefined || d.reason === "undefined" || d.reason === "delayed" ? undefined : d;
  }

  get size(): number {
    return this.byAddress.size;
  }

  add(f: BounceFinding): void {
    const d: BounceFinding = { address: f.address, kind: f.kind, source: f.source };
    if (f.status !== undefined) d.status = f.status;
    if (f.action !== undefined) d.action = f.action;
    if (f.diagnostic !== undefined) d.diagnostic = f.diagnostic;
    if (f.diagnosticType !== undefined) d.diagnosticType = f.diagnosticType;
    const existing = this.byAddress.get(d.address);
    if (existing === undefined || (existing.kind === "temporary" && d.kind === "permanent"))
      this.byAddress.set(d.address, d);
  }

  /** A finding with its reason, and its kind from the reason: every detail has both. */
  private classify(d: BounceFinding): BounceDetail {
    if (d.kind === "temporary" || (d.action ?? "").startsWith("delay"))
      return { ...d, kind: "temporary", reason: "delayed" };
    // a DSN block without a Diagnostic-Code: the notice's line about this address is its words
    // (OpenSMTPD writes "addr: 550 5.7.25 ... rejected" in the text and only "Status: 5.0.0" in the DSN)
    const words = d.diagnostic ?? this.lineNaming(d.address);
    const command = smtpCommand(words) ?? smtpCommand(this.notice);
    // a generic X.0.0 Status says less than the code in the server's words ("550 #5.1.0 Address rejected")
    const spoken = findStatus(words ?? "");
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
        : classifyReason({ text: words, status, command });
    if (reason === "undefined" || (words === undefined && d.status === undefined)) {
      // the notice is the reporting MTA's own summary: a generic X.0.0 beside it says nothing more
      const own = status?.endsWith(".0.0") === true ? undefined : status;
      reason = classifyReason({ text: this.notice, status: own, command });
    }
    const wrapped = reason === "undefined" ? this.innerDetail(d.address) : undefined;
    if (wrapped !== undefined) return { ...d, kind: wrapped.kind, reason: wrapped.reason };
    const kind = isHardReason(reason, status, words ?? this.notice) ? "permanent" : "temporary";
    return { ...d, kind, reason };
  }

  /** The first line of the notice that names the address, if any. */
  private lineNaming(address: string): string | undefined {
    const lower = this.notice.toLowerCase();
    const at = lower.indexOf(address.toLowerCase());
    if (at < 0) return undefined;
    const start = lower.lastIndexOf("\n", at) + 1;
    const end = lower.indexOf("\n", at);
    return this.notice.slice(start, end < 0 ? undefined : end).trim();
  }

  result(format: BounceFormat): BounceScan {
    const details = [...this.byAddress.values()].map((f) => this.classify(f));
    return {
      recognized: details.length > 0,
      format,
      permanent: details.filter((d) => d.kind === "permanent").map((d) => d.address),
      temporary: details.filter((d) => d.kind === "temporary").map((d) => d.address),
      details,
    };
  }
}
