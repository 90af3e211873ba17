/**
 * Live progress: on a terminal a block redrawn in place (ANSI cursor movement) a few times a second;
 * otherwise (a pipe, a CI log) one plain line per second.
 */
import type { QueueStats } from "../queue/stats.js";
import { formatDuration } from "../util/units.js";
import type { DemoEvent } from "./observer.js";

export interface HostLine {
  name: string;
  /** undefined for the fallback */
  weight: number | undefined;
  up: boolean;
  transactions: number;
  recipients: number;
  /** recipient deliveries per second, over the last interval */
  rate: number;
}

export interface Snapshot {
  elapsedMs: number;
  phase: string;
  queues: ReadonlyMap<string, QueueStats>;
  hosts: readonly HostLine[];
  delivered: number;
  expected: number;
  duplicates: number;
  rate: number;
  backoffEntries: number;
  events: readonly DemoEvent[];
}

export const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");
const pct = (a: number, b: number): string => (b === 0 ? "0.0%" : `${((100 * a) / b).toFixed(1)}%`);

function queueText(queues: ReadonlyMap<string, QueueStats>): string {
  return [...queues].map(([name, s]) => `${name} ${fmt(s.depth + s.inProgress)}`).join("  ");
}

export class Progress {
  private drawn = 0;
  private lastLine = 0;
  private eventsShown = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    readonly tty: boolean = out.isTTY === true,
  ) {}

  update(s: Snapshot): void {
    if (this.tty) {
      this.redraw(this.block(s));
      return;
    }
    this.newEvents(s);
    if (s.elapsedMs - this.lastLine >= 1000 || this.lastLine === 0) {
      this.lastLine = s.elapsedMs;
      this.out.write(this.line(s) + "\n");
    }
  }

  /** Leave the last block on screen and go on below it. */
  finish(s: Snapshot): void {
    if (this.tty) this.redraw(this.block(s));
    else {
      this.newEvents(s);
      this.out.write(this.line(s) + "\n");
    }
    this.drawn = 0;
  }

  /** Without a terminal, events get a line of their own as they happen. */
  private newEvents(s: Snapshot): void {
    for (const e of s.events.slice(this.eventsShown))
      this.out.write(`[${formatDuration(e.at, "seconds").padStart(6)}] ${e.text}\n`);
    this.eventsShown = s.events.length;
  }

  private line(s: Snapshot): string {
    const hosts = s.hosts.map((h) => `${h.name}${h.up ? "" : "(DOWN)"} ${fmt(h.recipients)}`).join(" ");
    return (
      `[${formatDuration(s.elapsedMs, "seconds").padStart(6)}] ${s.phase} | queues ${queueText(s.queues)} | ` +
      `delivered ${fmt(s.delivered)}/${fmt(s.expected)} ${pct(s.delivered, s.expected)} ${fmt(s.rate)}/s | ${hosts} | ` +
      `backoff entries ${fmt(s.backoffEntries)} dup ${s.duplicates}`
    );
  }

  private block(s: Snapshot): string[] {
    const width = Math.max(40, (this.out.columns ?? 100) - 1);
    const bar = (frac: number, n: number): string => {
      const full = Math.round(Math.min(1, Math.max(0, frac)) * n);
      return "#".repeat(full) + ".".repeat(n - full);
    };
    const total = s.hosts.reduce((a, h) => a + h.recipients, 0);
    const lines = [
      `\x1b[1mqrunner demo\x1b[0m  ${formatDuration(s.elapsedMs, "seconds")}  ${s.phase}`,
      `queues     ${queueText(s.queues)}`,
      `delivered  ${bar(s.delivered / Math.max(1, s.expected), 30)} ${fmt(s.delivered)} / ${fmt(s.expected)} (${pct(s.delivered, s.expected)})  ${fmt(s.rate)}/s`,
      `           duplicates ${s.duplicates}   entries through backoff ${fmt(s.backoffEntries)}`,
      ...s.hosts.map((h) => {
        const state = h.up ? "\x1b[32mup\x1b[0m  " : "\x1b[31mDOWN\x1b[0m";
        const w = h.weight === undefined ? "fallback" : `weight ${h.weight}`;
        return (
          `  ${h.name.padEnd(10)} ${state} ${w.padEnd(9)} ${bar(h.recipients / Math.max(1, total), 20)} ` +
          `${fmt(h.recipients).padStart(9)} rcpt ${fmt(h.transactions).padStart(6)} tx ${fmt(h.rate).padStart(7)}/s`
        );
      }),
      ...s.events.slice(-4).map((e) => `  ${formatDuration(e.at, "seconds").padStart(6)}  ${e.text}`),
    ];
    // never wrap: a wrapped line would break the cursor arithmetic of the redraw
    return lines.map((l) =>
      visibleLength(l) > width ? l.slice(0, width + (l.length - visibleLength(l))) : l,
    );
  }

  private redraw(lines: string[]): void {
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A\r` : "";
    for (const l of lines) out += `\x1b[2K${l}\n`;
    out += "\x1b[J";
    this.out.write(out);
    this.drawn = lines.length;
  }
}

function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "").length;
}
