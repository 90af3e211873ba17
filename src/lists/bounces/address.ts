/**
 * Addresses as bounces write them: `rfc822; Alice@Example.NET`, `<bob@example.com>`,
 * `mailto:carol@example.org`, `"dave@example.net"`. We reduce them to the list's canonical form
 * (src/lists/addresses.ts: domain lowercased, local part as written) and drop anything that is not a
 * plain mailbox, so that a detected address can be looked up among the members as it is.
 */
import { isValidAddress, normalizeAddress } from "../addresses.js";

/** Longest field value we try to read an address from: an address is at most 254, plus type and wrappers. */
const MAX_RAW_ADDRESS = 512;

/** The address in one DSN address field or text token, canonical; undefined when it is none. */
export function cleanAddress(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  // cap first: a 250 KB "address" costs nothing to refuse, and no cleaning step ever sees it
  if (raw.length > MAX_RAW_ADDRESS) return undefined;
  let s = raw.trim();
  // RFC 3464 address-type prefix ("rfc822;", "utf-8;"), then wrappers, in any order they come
  s = s.replace(/^(?:rfc822|utf-8|x-[a-z0-9-]+)\s*;\s*/i, "");
  s = s.replace(/^mailto:/i, "");
  for (let i = 0; i < 3; i++) {
    const before = s;
    s = trimTrailingPunctuation(s.trim());
    if (wrapped(s, "<", ">") || wrapped(s, "(", ")") || wrapped(s, "[", "]")) s = s.slice(1, -1);
    if ((wrapped(s, '"', '"') || wrapped(s, "'", "'")) && s.includes("@")) s = s.slice(1, -1);
    s = s.replace(/^mailto:/i, "");
    if (s === before) break;
  }
  s = s.trim();
  if (s.length === 0 || s.length > 254 || !s.includes("@")) return undefined;
  const n = normalizeAddress(s);
  return isValidAddress(n) ? n : undefined;
}

/** Whether `s` starts with `open` and ends with `close` (two characters at least). */
function wrapped(s: string, open: string, close: string): boolean {
  return s.length >= 2 && s.startsWith(open) && s.endsWith(close);
}

/** `s` without trailing `.`, `,`, `;`, `:` (a loop, not a regex that rescans the tail for each start). */
function trimTrailingPunctuation(s: string): string {
  let end = s.length;
  while (end > 0 && ".,;:".includes(s[end - 1] as string)) end--;
  return s.slice(0, end);
}

/** "@" signs examined per line of text. */
const MAX_AT_SIGNS = 100;

/** Characters that may appear in the local part we are willing to pick out of free text. */
const LOCAL_CHAR = /[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]/;
const DOMAIN_CHAR = /[A-Za-z0-9.-]/;

/**
 * Every plausible address in a line of free text, in order, canonical. Scans outward from each `@`
 * (bounded), so it stays linear on long junk lines where a regex would backtrack.
 */
export function findAddresses(line: string, max = 20): string[] {
  return findAddressesAt(line, max).map((f) => f.address);
}

/** Like findAddresses, with where each address starts in the line (the first time it appears). */
export function findAddressesAt(line: string, max = 20): Array<{ address: string; index: number }> {
  const out: Array<{ address: string; index: number }> = [];
  let from = 0;
  // a line of junk can hold thousands of "@": look at a bounded number of them
  for (let tries = 0; out.length < max && tries < MAX_AT_SIGNS; tries++) {
    const at = line.indexOf("@", from);
    if (at < 0) break;
    from = at + 1;
    let l = at;
    while (l > 0 && at - l < 64 && LOCAL_CHAR.test(line[l - 1] as string)) l--;
    let r = at + 1;
    while (r < line.length && r - at < 255 && DOMAIN_CHAR.test(line[r] as string)) r++;
    let start = l;
    while (start < at && (line[start] === "." || line[start] === "'" || line[start] === "=")) start++;
    let end = r;
    while (end > at + 1 && (line[end - 1] === "." || line[end - 1] === "-")) end--;
    const candidate = line.slice(start, end);
    const domain = candidate.slice(candidate.indexOf("@") + 1);
    // text hits need a dotted domain: "user@host" in prose is more often noise than a mailbox
    if (!/\.[A-Za-z]{2,}$/.test(domain)) continue;
    const a = cleanAddress(candidate);
    if (a !== undefined && !out.some((o) => o.address === a)) out.push({ address: a, index: start });
  }
  return out;
}

/** The first address in the text, or undefined. */
export function firstAddress(line: string): string | undefined {
  return findAddresses(line, 1)[0];
}

/** An RFC 3463 status code in free text ("550 5.1.1 ...", "(#5.1.1)"), not a piece of an IP address. */
export function findStatus(text: string): string | undefined {
  const m = /(?:^|[\s#([;:'"])([245]\.\d{1,3}\.\d{1,3})(?![.\d])/.exec(text);
  return m?.[1];
}

/** One line, printable: bounces are attacker-controlled and end up on operators' terminals. */
export function sanitize(text: string, max = 500): string {
  const s = text
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]+/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}
