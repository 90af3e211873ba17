/**
 * Text from mail on its way to an operator's terminal. A header, a subject, an SMTP server's reply or a
 * bounce's diagnostic is written by strangers: an ESC or CSI sequence in it could retitle the window,
 * move the cursor, rewrite what is on screen or (in some terminals) answer back; a bidi override can
 * make a line read differently from what it holds. When the output is a terminal every such character
 * is shown as `\uXXXX` text; `--raw` (and output to a pipe or file) gets the bytes as they are.
 *
 * The `\uXXXX` form is also a valid JSON escape, so `--json` output escaped this way is the same JSON.
 */

/**
 * C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), and the bidi embeddings, overrides, isolates
 * and marks. One character class, no quantifier: linear in the text.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function hex4(c: string): string {
  return "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0");
}

/**
 * Escape every unsafe character as `\uXXXX`. With `lines`, line breaks stay (`\n`, and `\r` just before
 * a `\n`) and so does tab: for multi-line text such as a message header. Without, everything is escaped:
 * for a table cell, which must stay on one line.
 */
export function escapeControls(text: string, opts: { lines?: boolean } = {}): string {
  const lines = opts.lines === true;
  return text.replace(UNSAFE, (c: string, at: number) => {
    if (lines && (c === "\n" || c === "\t" || (c === "\r" && text.charCodeAt(at + 1) === 0x0a))) return c;
    return hex4(c);
  });
}

/** Every string in a plain value (objects, arrays) escaped for one line; other values as they are. */
export function escapeDeep<T>(value: T): T {
  if (typeof value === "string") return escapeControls(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => escapeDeep(v)) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = escapeDeep(v);
    return out as T;
  }
  return value;
}

/** How a command writes text that may hold mail's bytes: escaped for a terminal, as is otherwise. */
export interface TerminalText {
  /** true when the output is a terminal and --raw was not given */
  readonly escaping: boolean;
  /** multi-line text (line breaks and tabs kept) */
  text(s: string): string;
  /** data for a table or a one-line rendering: every string escaped, line breaks included */
  data<T>(value: T): T;
  /** write multi-line text to the stream, escaped when escaping */
  write(s: string): void;
}

/** The writer for `stream` (default stdout): escaping exactly when it is a terminal and not `raw`. */
export function terminalText(
  raw: boolean | undefined,
  stream: NodeJS.WriteStream = process.stdout,
): TerminalText {
  const escaping = stream.isTTY === true && raw !== true;
  const text = (s: string): string => (escaping ? escapeControls(s, { lines: true }) : s);
  return {
    escaping,
    text,
    data: <T>(value: T): T => (escaping ? escapeDeep(value) : value),
    write: (s: string) => void stream.write(text(s)),
  };
}

/** The option every command that prints message text takes. */
export const RAW_OPTION = [
  "--raw",
  "print message text as it is, control characters included, even on a terminal",
] as const;
