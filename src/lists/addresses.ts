/**
 * List addressing: what an address is, when two addresses are the same, and which list (and which of
 * its role addresses) an envelope recipient names.
 *
 * Addresses follow RFC 5321: the domain is case-insensitive and kept lowercased, the local part is
 * kept exactly as written (only the receiving host may interpret its case). The list's own addresses
 * are ours to interpret, so recipients are matched to lists case-insensitively.
 */
import { QrunnerError } from "../util/errors.js";
import { trimOf } from "../util/trim.js";
import { ADDRESS_RE } from "./address-syntax.js";
import type { ListConfig } from "./schema.js";

/** An address that is not a plain local@domain mailbox we are willing to use (in a path, a header, an envelope). */
export class InvalidAddressError extends QrunnerError {
  readonly address: string;
  readonly reason: string;
  constructor(address: string, reason: string, options?: { cause?: unknown }) {
    // JSON.stringify shows CR, LF and NUL escaped, so the message itself stays one safe line
    super("EADDRESS", `invalid address ${JSON.stringify(address)}: ${reason}`, options);
    this.address = address;
    this.reason = reason;
  }
}

export const MAX_ADDRESS_LENGTH = 254;

/**
 * Characters a shell, a glob or a quoting layer would interpret. ADDRESS_RE (RFC 5322 atext) admits
 * several of them; we refuse them too, so that an address is inert wherever an operator pastes it.
 */
const SHELL_CHARS_RE = /[`'"$|&;<>()\\*?[\]{}~!#\s]/;
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_RE = /[\x00-\x1f\x7f]/;

/**
 * The canonical form: surrounding blanks and one pair of angle brackets removed, the domain lowercased,
 * the local part as written. Does not validate (see `validateAddress`); CR, LF and NUL are kept so that
 * validation still sees them.
 */
export function normalizeAddress(a: string): string {
  let s = trimOf(a, " \t");
  if (s.startsWith("<") && s.endsWith(">")) s = trimOf(s.slice(1, -1), " \t");
  const at = s.lastIndexOf("@");
  if (at < 0) return s;
  return s.slice(0, at) + "@" + s.slice(at + 1).toLowerCase();
}

/** The same mailbox: domains compared case-insensitively, local parts exactly (RFC 5321 section 2.4). */
export function sameAddress(a: string, b: string): boolean {
  return normalizeAddress(a) === normalizeAddress(b);
}

/** Why `a` is not acceptable, or null when it is. */
export function addressProblem(a: string): string | null {
  if (CONTROL_RE.test(a)) return "contains a control character (CR, LF, NUL, ...)";
  const n = normalizeAddress(a);
  if (n.length === 0) return "empty";
  if (n.length > MAX_ADDRESS_LENGTH) return `longer than ${MAX_ADDRESS_LENGTH} characters`;
  if (n.includes("/")) return "contains '/'";
  if (n.includes("..")) return "contains '..'";
  if (SHELL_CHARS_RE.test(n)) return "contains a quote, blank or shell character";
  if (!n.includes("@")) return "no '@domain'";
  if (!ADDRESS_RE.test(n)) return "not a plain mail address (local@domain)";
  return null;
}

/** Validate and normalize; throws InvalidAddressError. Returns the normalized address. */
export function validateAddress(a: string): string {
  const problem = addressProblem(a);
  if (problem !== null) throw new InvalidAddressError(a, problem);
  return normalizeAddress(a);
}

export function isValidAddress(a: string): boolean {
  return addressProblem(a) === null;
}

export type RouteRole = "post" | "request" | "join" | "leave" | "bounces" | "owner";

export interface Route {
  list: ListConfig;
  role: RouteRole;
  /** for VERP bounces (`dev-bounces+alice=example.net+TAG@`): the member the bounce is about */
  verpMember?: string;
  /** the VERP address's signature tag (src/lists/verp.ts), when it has one */
  verpTag?: string;
  /** the text after `-bounces+` as written, whenever there is one (decoded or not) */
  verpSuffix?: string;
  /** `dev-request+confirm-TOKEN@`: the token a reply to a held-post notice carries (case kept) */
  confirmToken?: string;
}

/** The parts of a list that its role addresses derive from. */
export type ListAddressParts = Pick<ListConfig, "name" | "domain">;

const SUFFIX_ROLES: ReadonlyArray<readonly [string, RouteRole]> = [
  ["-request", "request"],
  ["-join", "join"],
  ["-leave", "leave"],
  ["-bounces", "bounces"],
  ["-owner", "owner"],
];

const VERP_MARK = "-bounces+";
/** `<name>-request+confirm-<token>`: where replies to held-post notices go */
const CONFIRM_MARK = "-request+confirm-";
const CONFIRM_TOKEN_RE = /^[A-Za-z0-9_-]{20,64}$/;

/**
 * Which list and role an envelope recipient names, or null for none of ours. An exact posting address
 * wins over a role suffix, so a list called `dev-request` keeps its own posts.
 */
export function routeRecipient(rcpt: string, lists: ReadonlyMap<string, ListConfig>): Route | null {
  if (CONTROL_RE.test(rcpt)) return null;
  const addr = normalizeAddress(rcpt);
  const at = addr.lastIndexOf("@");
  if (at <= 0) return null;
  const local = addr.slice(0, at);
  const lower = local.toLowerCase();
  const domain = addr.slice(at + 1);

  const byName = new Map<string, ListConfig>();
  for (const list of lists.values()) {
    if (list.domain.toLowerCase() === domain) byName.set(list.name.toLowerCase(), list);
  }
  if (byName.size === 0) return null;

  const exact = byName.get(lower);
  if (exact) return { list: exact, role: "post" };

  for (const [suffix, role] of SUFFIX_ROLES) {
    if (lower.endsWith(suffix)) {
      const list = byName.get(lower.slice(0, -suffix.length));
      if (list) return { list, role };
    }
  }

  // a list name holds no "+", so the first mark is the one
  const confirm = lower.indexOf(CONFIRM_MARK);
  if (confirm > 0) {
    const list = byName.get(lower.slice(0, confirm));
    const token = local.slice(confirm + CONFIRM_MARK.length);
    if (list && CONFIRM_TOKEN_RE.test(token)) return { list, role: "request", confirmToken: token };
  }

  // VERP: <name>-bounces+<local>=<domain>@<list domain>; the member part may itself hold "-bounces+"
  for (let i = lower.indexOf(VERP_MARK); i > 0; i = lower.indexOf(VERP_MARK, i + 1)) {
    const list = byName.get(lower.slice(0, i));
    if (!list) continue;
    const suffix = local.slice(i + VERP_MARK.length);
    const v = decodeVerp(suffix);
    if (v === null) return { list, role: "bounces", verpSuffix: suffix };
    return {
      list,
      role: "bounces",
      verpMember: v.member,
      verpSuffix: suffix,
      ...(v.tag !== undefined ? { verpTag: v.tag } : {}),
    };
  }
  return null;
}

/**
 * `alice=example.net+TAG` → the member `alice@example.net` and the signature tag; the tag is the text
 * after a `+` that follows the last `=` (a domain never holds `+`), absent for an unsigned address.
 * Null when the member part does not decode to a valid address.
 */
export function decodeVerp(encoded: string): { member: string; tag?: string } | null {
  const eq = encoded.lastIndexOf("=");
  const plus = encoded.lastIndexOf("+");
  if (eq > 0 && plus > eq) {
    const member = decodeVerpMember(encoded.slice(0, plus));
    return member === null ? null : { member, tag: encoded.slice(plus + 1) };
  }
  const member = decodeVerpMember(encoded);
  return member === null ? null : { member };
}

/** `alice=example.net` → `alice@example.net`; null when it does not decode to a valid address. */
export function decodeVerpMember(encoded: string): string | null {
  // a domain never holds "=", so the last one separates; a local part may hold "=" itself
  const eq = encoded.lastIndexOf("=");
  if (eq <= 0 || eq === encoded.length - 1) return null;
  const member = encoded.slice(0, eq) + "@" + encoded.slice(eq + 1);
  return isValidAddress(member) ? normalizeAddress(member) : null;
}

/** The list's posting address, `name@domain`. */
export function postAddress(list: ListAddressParts): string {
  return `${list.name}@${list.domain}`;
}

export function requestAddress(list: ListAddressParts): string {
  return `${list.name}-request@${list.domain}`;
}

export function joinAddress(list: ListAddressParts): string {
  return `${list.name}-join@${list.domain}`;
}

export function leaveAddress(list: ListAddressParts): string {
  return `${list.name}-leave@${list.domain}`;
}

export function bouncesAddress(list: ListAddressParts): string {
  return `${list.name}-bounces@${list.domain}`;
}

export function ownerAddress(list: ListAddressParts): string {
  return `${list.name}-owner@${list.domain}`;
}

/**
 * The unsigned VERP form, as Mailman encodes it: `dev-bounces+alice=example.net@example.org`. qrunner
 * sends the signed form (src/lists/verp.ts `signedVerpAddress`) and intake refuses this one.
 */
export function verpAddress(list: ListAddressParts, member: string): string {
  const m = normalizeAddress(member);
  const at = m.lastIndexOf("@");
  if (at <= 0) throw new InvalidAddressError(member, "no '@domain'");
  return `${list.name}-bounces+${m.slice(0, at)}=${m.slice(at + 1)}@${list.domain}`;
}

/**
 * The list an operator names on the command line: its address (any case), or its bare name when only
 * one list has that name. Undefined when there is no such list.
 */
export function findList(lists: ReadonlyMap<string, ListConfig>, arg: string): ListConfig | undefined {
  const want = normalizeAddress(arg).toLowerCase();
  const all = [...lists.values()];
  if (want.includes("@")) return all.find((l) => l.address.toLowerCase() === want);
  const named = all.filter((l) => l.name.toLowerCase() === want);
  return named.length === 1 ? named[0] : undefined;
}

/** Who moderates a list: its owners, then its moderators (each address once, as written). */
export function moderatorsOf(
  list: Pick<ListConfig, "owners"> & Partial<Pick<ListConfig, "moderators">>,
): string[] {
  const out: string[] = [];
  for (const a of [...list.owners, ...(list.moderators ?? [])])
    if (!out.some((o) => sameAddress(o, a))) out.push(a);
  return out;
}

/** May `address` moderate the list (an owner or a moderator)? */
export function isModerator(
  list: Pick<ListConfig, "owners"> & Partial<Pick<ListConfig, "moderators">>,
  address: string,
): boolean {
  return moderatorsOf(list).some((m) => sameAddress(m, address));
}
