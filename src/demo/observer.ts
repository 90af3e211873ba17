/**
 * What the demo learns from qrunner's own log lines: workers ready, entries sent to backoff, the
 * weighted split of outgoing entries by slice, deliveries made by the backoff runner, and the moments
 * a host was found down or back.
 */
import type { LogLine } from "./master.js";

export interface DemoEvent {
  /** ms since the demo started */
  at: number;
  text: string;
}

const CANNOT_REACH = "cannot reach host; its mail goes to backoff";
const REACHABLE = "host is reachable again";

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function num(v: unknown): number {
  return typeof v === "number" ? v : 0;
}

export class Observer {
  /** "runner slice" of each worker that said it is ready */
  readonly ready = new Set<string>();
  /** entries (sha1) that were handed to backoff at least once */
  readonly backoffEntries = new Set<string>();
  /** outgoing entries by the slice (worker) that took them */
  readonly bySlice = new Map<string, Set<string>>();
  /** deliveries made by the backoff runner, by host */
  readonly viaBackoff = new Map<string, { transactions: number; recipients: number }>();
  readonly cannotReach = new Map<string, number>();
  readonly reachableAgain = new Map<string, number>();
  readonly events: DemoEvent[] = [];
  errors = 0;
  shunted = 0;
  lastError = "";

  constructor(private readonly startedAt: number) {}

  note(text: string): void {
    this.events.push({ at: Date.now() - this.startedAt, text });
  }

  readyCount(runner: string): number {
    let n = 0;
    for (const k of this.ready) if (k.startsWith(`${runner} `)) n++;
    return n;
  }

  line(l: LogLine): void {
    const msg = str(l["msg"]) ?? "";
    const runner = str(l["runner"]) ?? "";
    const entry = str(l["entry"]);
    const host = str(l["host"]) ?? "?";
    if (runner === "outgoing" && entry !== undefined) {
      const slice = str(l["slice"]) ?? "?";
      let set = this.bySlice.get(slice);
      if (!set) this.bySlice.set(slice, (set = new Set()));
      set.add(entry);
    }
    switch (msg) {
      case "worker ready":
        this.ready.add(`${runner} ${str(l["slice"]) ?? ""}`);
        return;
      case "temporary failure; retry scheduled":
        if (entry !== undefined) this.backoffEntries.add(entry);
        return;
      case "delivery attempt":
        if (runner === "backoff" && num(l["accepted"]) > 0) {
          const v = this.viaBackoff.get(host) ?? { transactions: 0, recipients: 0 };
          v.transactions++;
          v.recipients += num(l["accepted"]);
          this.viaBackoff.set(host, v);
        }
        return;
      case CANNOT_REACH:
        this.cannotReach.set(host, (this.cannotReach.get(host) ?? 0) + 1);
        this.note(`qrunner (${runner}): cannot reach host ${host}; its mail goes to backoff`);
        return;
      case REACHABLE:
        this.reachableAgain.set(host, (this.reachableAgain.get(host) ?? 0) + 1);
        this.note(`qrunner (${runner}): host ${host} is reachable again`);
        return;
      case "handler failed; entry shunted":
        this.shunted++;
        break;
    }
    if (l["level"] === "error" || l["level"] === "fatal") {
      this.errors++;
      const err = l["err"];
      const detail = str(err) ?? str((err as { message?: unknown } | undefined)?.message) ?? "";
      this.lastError = `${runner || str(l["role"]) || "?"}: ${msg}${detail ? `: ${detail}` : ""}`.slice(
        0,
        200,
      );
    }
  }
}
