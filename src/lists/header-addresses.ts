/**
 * Mailbox addresses out of an address header (To, Cc, From, Return-Path, X-BeenThere), in one pass.
 *
 * Hand-written on purpose: nodemailer's addressparser (which this replaces) is quadratic on hostile
 * values. Its fallback regex `/\s*\b[^@\s]+@[^\s]+\b\s*` restarts at every word boundary of a long
 * `a.a.a.…` run (64 KiB: 3.5 s), and it grows its result with `concat` once per address. Here each
 * character is looked at once; only the addr-specs are wanted, so display names, comments and group
 * names are skipped rather than decoded.
 */

/** A header value over this is not an address list we need to read in full (caps before parsing). */
export const MAX_ADDRESS_HEADER = 65536;

/** Blanks, line breaks and other controls separate words. */
function separates(code: number): boolean {
  return code <= 0x20 || code === 0x7f;
}

/** The addr-specs of a header value, in order; display names, comments and groups are dropped. */
export function extractAddresses(value: string): string[] {
  const v = value.length > MAX_ADDRESS_HEADER ? value.slice(0, MAX_ADDRESS_HEADER) : value;
  const out: string[] = [];
  // the mailbox being read: its first <angle-addr>, else its bare words (outside comments and quotes)
  let angle: string | undefined;
  let words: string[] = [];
  let wordStart = -1; // where the current word began, -1 between words
  let quotedWord = false; // the current word holds a quoted string: a display name, never an address
  const endWord = (end: number): void => {
    if (wordStart !== -1 && !quotedWord) words.push(v.slice(wordStart, end));
    wordStart = -1;
    quotedWord = false;
  };
  const endMailbox = (end: number): void => {
    endWord(end);
    const found = angle !== undefined ? angleAddress(angle) : bareAddress(words);
    if (found !== "") out.push(found);
    angle = undefined;
    words = [];
  };
  let i = 0;
  while (i < v.length) {
    const c = v.charAt(i);
    if (c === '"') {
      if (wordStart === -1) wordStart = i;
      quotedWord = true;
      i = skipQuoted(v, i);
    } else if (c === "(") {
      endWord(i);
      i = skipComment(v, i);
    } else if (c === "<") {
      endWord(i);
      const close = v.indexOf(">", i + 1);
      const stop = close === -1 ? v.length : close;
      angle ??= v.slice(i + 1, stop);
      i = stop + 1;
    } else if (c === "," || c === ";") {
      endMailbox(i);
      i++;
    } else if (c === ":" && angle === undefined) {
      // a group's display name ends here: what came before names the group, not a mailbox
      wordStart = -1;
      quotedWord = false;
      words = [];
      i++;
    } else if (separates(v.charCodeAt(i))) {
      endWord(i);
      i++;
    } else {
      if (wordStart === -1) wordStart = i;
      i++;
    }
  }
  endMailbox(v.length);
  return out;
}

/** Past the quoted string that starts at `start` (backslash escapes honoured); unterminated: the end. */
function skipQuoted(v: string, start: number): number {
  let i = start + 1;
  while (i < v.length) {
    const c = v.charAt(i);
    if (c === "\\") i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  return v.length;
}

/** Past the comment that starts at `start` (nested, with escapes); unterminated: the end. */
function skipComment(v: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < v.length) {
    const c = v.charAt(i);
    if (c === "\\") i += 2;
    else {
      if (c === "(") depth++;
      else if (c === ")" && --depth === 0) return i + 1;
      i++;
    }
  }
  return v.length;
}

/** `<@relay:local@domain>` (an obsolete source route) reads as `local@domain`. */
function angleAddress(inner: string): string {
  const a = inner.trim();
  const colon = a.startsWith("@") ? a.indexOf(":") : -1;
  return colon === -1 ? a : a.slice(colon + 1).trim();
}

/** A mailbox without angle brackets: its word that is one local@domain, else its first word with an @. */
function bareAddress(words: readonly string[]): string {
  let loose = "";
  for (const w of words) {
    const at = w.indexOf("@");
    if (at === -1) continue;
    if (at > 0 && at < w.length - 1 && w.indexOf("@", at + 1) === -1) return w;
    if (loose === "") loose = w;
  }
  return loose;
}
