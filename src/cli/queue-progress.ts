/**
 * Terminal helpers for the bulk queue commands: a progress bar on stderr (only when stderr is a
 * terminal and the work is bulk), and a yes/no question read from the terminal.
 */
import { createInterface } from "node:readline/promises";

/** From this many entries on, work is "bulk" and shows a progress bar. */
export const BULK = 100;

export class Progress {
  readonly active: boolean;
  private done = 0;
  private lastDraw = 0;
  private readonly started = Date.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.active = stream.isTTY === true && total >= BULK;
  }

  tick(n = 1): void {
    this.done += n;
    if (!this.active) return;
    const now = Date.now();
    // ten frames a second is smooth enough and costs nothing next to the fsyncs
    if (now - this.lastDraw < 100 && this.done < this.total) return;
    this.lastDraw = now;
    this.draw();
  }

  /** Draw the final state and move to a fresh line. Safe to call twice. */
  finish(): void {
    if (!this.active || this.lastDraw < 0) return;
    this.draw();
    this.stream.write("\n");
    this.lastDraw = -1;
  }

  private draw(): void {
    const cols = Math.max(40, this.stream.columns || 80);
    const pct = this.total ? Math.min(1, this.done / this.total) : 1;
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0.5 ? ` ${Math.round(this.done / secs)}/s` : "";
    const tail = ` ${this.done}/${this.total} ${Math.floor(pct * 100)}%${rate}`;
    const width = Math.max(10, cols - this.label.length - tail.length - 4);
    const fill = Math.round(pct * width);
    this.stream.write(`\r${this.label} [${"#".repeat(fill)}${".".repeat(width - fill)}]${tail}\x1b[K`);
  }
}

/** Ask a yes/no question on the terminal (stderr); true only for y or yes (Ctrl-C or Ctrl-D: no). */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // a closed terminal or Ctrl-C answers no, instead of leaving the question pending for ever
  const closed = new Promise<null>((resolve) => rl.once("close", () => resolve(null)));
  rl.once("SIGINT", () => rl.close());
  try {
    const answer = await Promise.race([rl.question(`${question} [y/N] `), closed]);
    if (answer === null) process.stderr.write("\n");
    return answer !== null && /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
