/**
 * Selecting entries for operators (`queue list` and the bulk commands): by list, recipient domain,
 * age and kind. Pure functions over entry summaries, so a filter is tested without a queue.
 *
 * Age is measured from `meta.received` (when the message first reached qrunner), as Postfix's
 * qshape measures from arrival: a file name's time is the due time for deferred entries, which says
 * nothing about how long the mail has waited.
 */
import type { EntrySummary } from "./inspect.js";

export interface EntryFilter {
  /** the list's posting address (case-insensitive) */
  list?: string;
  /** a recipient domain; a leading dot also matches its subdomains (`.example.org`) */
  domain?: string;
  /** older than this many ms */
  olderThanMs?: number;
  /** younger than this many ms */
  youngerThanMs?: number;
  /** meta.kind: post, request, notice, bounce-event, ... */
  kind?: string;
}

/** Does the filter narrow anything? (An empty one matches every entry.) */
export function hasFilter(f: EntryFilter): boolean {
  return (
    f.list !== undefined ||
    f.domain !== undefined ||
    f.olderThanMs !== undefined ||
    f.youngerThanMs !== undefined ||
    f.kind !== undefined
  );
}

/** The domain of an address, lowercased, without a trailing dot or angle brackets; "" when none. */
export function domainOf(address: string): string {
  const a = address.trim().replace(/^<|>$/g, "");
  const at = a.lastIndexOf("@");
  return at < 0
    ? ""
    : a
        .slice(at + 1)
        .toLowerCase()
        .replace(/\.$/, "");
}

/** `example.org` matches exactly; `.example.org` matches it and every subdomain. */
export function domainMatches(domain: string, want: string): boolean {
  const w = want.toLowerCase().replace(/\.$/, "");
  if (w.startsWith(".")) return domain === w.slice(1) || domain.endsWith(w);
  return domain === w;
}

/** ms since the entry first reached qrunner (the file name's time when its metadata is unreadable). */
export function entryAge(e: EntrySummary, now: number): number {
  return Math.max(0, now - (e.meta?.received ?? e.time));
}

/** The recipients of an entry the filter's domain selects (all of them without a domain filter). */
export function matchingRecipients(e: EntrySummary, f: EntryFilter): string[] {
  const rcpts = e.meta?.recipients ?? [];
  if (f.domain === undefined) return rcpts;
  const want = f.domain;
  return rcpts.filter((r) => domainMatches(domainOf(r), want));
}

export function matchesFilter(e: EntrySummary, f: EntryFilter, now: number): boolean {
  const m = e.meta;
  // an entry whose metadata cannot be read matches only filters that need none
  if (m === null && (f.list !== undefined || f.domain !== undefined || f.kind !== undefined)) return false;
  if (f.list !== undefined && (m?.list ?? "").toLowerCase() !== f.list.toLowerCase()) return false;
  if (f.kind !== undefined && m?.kind !== f.kind) return false;
  if (f.domain !== undefined && matchingRecipients(e, f).length === 0) return false;
  const age = entryAge(e, now);
  if (f.olderThanMs !== undefined && !(age > f.olderThanMs)) return false;
  if (f.youngerThanMs !== undefined && !(age < f.youngerThanMs)) return false;
  return true;
}

/** The filter in words, for messages ("list dev@example.org, domain example.net, older than 1h"). */
export function describeFilter(f: EntryFilter, fmt: (ms: number) => string): string {
  const parts: string[] = [];
  if (f.list !== undefined) parts.push(`list ${f.list}`);
  if (f.domain !== undefined) parts.push(`domain ${f.domain}`);
  if (f.kind !== undefined) parts.push(`kind ${f.kind}`);
  if (f.olderThanMs !== undefined) parts.push(`older than ${fmt(f.olderThanMs)}`);
  if (f.youngerThanMs !== undefined) parts.push(`younger than ${fmt(f.youngerThanMs)}`);
  return parts.join(", ");
}
