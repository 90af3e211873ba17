/**
 * What the text detectors share: their result type and the two layouts most non-DSN bounces use,
 * qmail's recipient paragraphs (`<addr>:` then the reason) and an indented address list.
 */
import { cleanAddress, findStatus, sanitize } from "./address.js";
import type { BounceKind } from "./dsn.js";

export type TextFormat = "qmail" | "exim" | "postfix-old" | "exchange" | "plain";

export interface TextFinding {
  address: string;
  kind: BounceKind;
  source: string;
  status?: string;
  diagnostic?: string;
}

export interface TextMatch {
  format: TextFormat;
  findings: TextFinding[];
  /** why a matched layout gave no bounce (a success notice, no readable address) */
  reason?: string;
}

/** A detector looks at the notification's lines and says whether its layout is there. */
export type TextDetector = (lines: readonly string[]) => TextMatch | null;

/** How far past an intro line a detector reads. */
export const MAX_SECTION_LINES = 400;

export function finding(
  address: string,
  kind: BounceKind,
  source: string,
  diag: readonly string[],
): TextFinding {
  const f: TextFinding = { address, kind, source };
  const text = diag.join(" ");
  const status = findStatus(text);
  if (status !== undefined) f.status = status;
  const d = sanitize(text);
  if (d !== "") f.diagnostic = d;
  return f;
}

/** Index of the first line at or after `from` matching `re`, or -1. */
export function findLine(lines: readonly string[], re: RegExp, from = 0): number {
  for (let i = from; i < lines.length; i++) if (re.test(lines[i] as string)) return i;
  return -1;
}

export function isBlank(line: string | undefined): boolean {
  return line === undefined || line.trim() === "";
}

export function isIndented(line: string): boolean {
  return line.startsWith(" ") || line.startsWith("\t");
}

/**
 * qmail's layout (QSBMF, also Yahoo's and other qmail descendants'): after the intro paragraph, one
 * paragraph per recipient, starting `<address>:` at the left margin; a paragraph starting with `-`
 * ("--- Below this line is a copy of the message.") ends the report.
 */
export function recipientParagraphs(
  lines: readonly string[],
  intro: number,
  kind: BounceKind,
  source: string,
): TextFinding[] {
  const out: TextFinding[] = [];
  let i = intro;
  while (i < lines.length && !isBlank(lines[i])) i++;
  let cur: { address: string; diag: string[] } | null = null;
  let paragraphStart = true;
  const close = (): void => {
    if (cur) out.push(finding(cur.address, kind, source, cur.diag));
    cur = null;
  };
  for (const end = Math.min(lines.length, i + MAX_SECTION_LINES); i < end; i++) {
    const line = lines[i] as string;
    if (isBlank(line)) {
      close();
      paragraphStart = true;
      continue;
    }
    if (paragraphStart && line.startsWith("-")) break;
    const m = paragraphStart ? /^<([^<>\s]*)>:?(.*)$/.exec(line) : null;
    paragraphStart = false;
    if (m) {
      const address = cleanAddress(m[1]);
      const said = (m[2] ?? "").trim();
      if (address !== undefined) cur = { address, diag: said ? [said] : [] };
      continue;
    }
    const c = cur as { address: string; diag: string[] } | null;
    if (c) c.diag.push(line.trim());
  }
  close();
  return out;
}

/**
 * An address list after an intro line: each line starting (after indentation) with an address names a
 * recipient; more deeply indented or parenthesized lines after it are its reason. The list ends at a
 * line that is neither, or at `end`.
 */
export function addressList(
  lines: readonly string[],
  intro: number,
  kind: BounceKind,
  source: string,
  end: RegExp = /^\s*-{3,}/,
): TextFinding[] {
  const out: TextFinding[] = [];
  let cur: { address: string; diag: string[]; indent: number } | null = null;
  const close = (): void => {
    if (cur) out.push(finding(cur.address, kind, source, cur.diag));
    cur = null;
  };
  for (let i = intro + 1, last = Math.min(lines.length, intro + 1 + MAX_SECTION_LINES); i < last; i++) {
    const line = lines[i] as string;
    if (isBlank(line)) continue;
    if (end.test(line)) break;
    const indent = line.length - line.trimStart().length;
    const trimmed = line.trim();
    const lead = /^<?([^\s<>(),;@]{1,64}@[^\s<>(),;@]{1,255}?)>?(?=$|[\s:,;(])(.*)$/.exec(trimmed);
    const address = lead ? cleanAddress(lead[1]) : undefined;
    if (address !== undefined && (cur === null || indent <= cur.indent)) {
      close();
      const rest = (lead?.[2] ?? "").replace(/^[\s:]+/, "");
      cur = { address, diag: rest ? [rest] : [], indent };
      continue;
    }
    if (cur && (indent > cur.indent || trimmed.startsWith("("))) {
      // Sendmail writes "(reason: 550 5.1.1 User unknown)"
      cur.diag.push(unparenthesize(trimmed));
      continue;
    }
    break;
  }
  close();
  return out;
}

/** "(reason: 550 5.1.1 User unknown)" -> "550 5.1.1 User unknown"; anything else as it is. */
function unparenthesize(s: string): string {
  if (!s.startsWith("(") || !s.endsWith(")")) return s;
  const inner = s.slice(1, -1);
  return inner.toLowerCase().startsWith("reason:") ? inner.slice(7).trimStart() : inner;
}

/** A reason stated after the list ("Technical details of permanent failure:", "The response was:"). */
export function trailingDiagnostic(lines: readonly string[], from: number, re: RegExp): string | undefined {
  const at = findLine(lines, re, from);
  if (at < 0) return undefined;
  const parts: string[] = [];
  const first = (lines[at] as string).replace(re, "").trim();
  if (first) parts.push(first);
  // the reason and, after one blank line, the server's reply that often follows it ("The error that
  // the other server returned was: 550 5.1.1 ...")
  let paragraphs = 0;
  for (let i = at + 1; i < lines.length && parts.length < 8; i++) {
    const l = lines[i] as string;
    if (isBlank(l)) {
      if (parts.length > 0 && !isBlank(lines[i - 1]) && ++paragraphs >= 2) break;
      continue;
    }
    if (/^-{2,}|^_{5,}/.test(l.trim())) break;
    parts.push(l.trim());
  }
  const d = sanitize(parts.join(" "));
  return d === "" ? undefined : d;
}

/** Give findings without a reason the shared one (and its status). */
export function withDiagnostic(findings: TextFinding[], diagnostic: string | undefined): TextFinding[] {
  if (diagnostic === undefined) return findings;
  for (const f of findings) {
    if (f.diagnostic === undefined) f.diagnostic = diagnostic;
    if (f.status === undefined) {
      const s = findStatus(diagnostic);
      if (s !== undefined) f.status = s;
    }
  }
  return findings;
}
