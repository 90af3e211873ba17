/**
 * Signed VERP addresses, as SRS signs return paths: a bounce can only score the member it names when
 * it comes back to an address qrunner itself sent from.
 *
 *   dev-bounces+alice=example.net+TTHHHHHHHH@example.org      a post to alice (verp: true)
 *   dev-bounces+alice=example.net+pTTHHHHHHHH@example.org     a bounce probe to alice (verp_probes)
 *
 * TT is the UTC day the address was made (days since 1970 modulo 1024, two base32 characters) and
 * HHHHHHHH the first 40 bits of HMAC-SHA256(secret, kind, list, member, full day number), base32
 * (RFC 4648 alphabet, lowercase; checked case-insensitively since some MTAs change a local part's
 * case). A tag is valid for VERP_VALID_DAYS days after the day it names (and one day ahead, for
 * clocks that disagree); the full day number is signed, so an old tag never comes back to life when
 * the two-character day wraps after 1024 days. Guessing a tag takes 2^40 tries per member and day.
 *
 * The secret is 32 random bytes, hex, in `<state>/verp.key`: created 0600 on first use, written to a
 * temp file, fsynced and linked into place (a second process racing to create it uses the first
 * one's), and the directory fsynced. Removing it makes a new one: addresses sent before stop verifying.
 *
 * Parsing is bounded and linear: lastIndexOf and fixed-length slices, no regular expression over the
 * address.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { QrunnerError } from "../util/errors.js";
import { InvalidAddressError, normalizeAddress } from "./addresses.js";
import type { ListConfig } from "./schema.js";

/** A VERP tag names a day at most this many days ago. */
export const VERP_VALID_DAYS = 21;
const DAY_MS = 86_400_000;
const DAY_WRAP = 1024;
const MAC_CHARS = 8;
const TAG_CHARS = 2 + MAC_CHARS;
const PROBE_MARK = "p";
const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";
export const VERP_KEY_FILE = "verp.key";

/** The VERP secret cannot be read or made: an operator must repair `<state>/verp.key`. */
export class VerpKeyError extends QrunnerError {
  readonly file: string;
  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super("EVERP_KEY", `${file}: ${detail}`, options);
    this.file = file;
  }
}

export type VerpKind = "post" | "probe";

/** What a VERP address's tag says, once checked. */
export type VerpVerdict =
  | { ok: true; kind: VerpKind; day: number }
  | { ok: false; problem: "unsigned" | "malformed" | "forged" | "stale"; reason: string };

function base32(bytes: Buffer, chars: number): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
    if (out.length >= chars) break;
  }
  return out;
}

function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function dayChars(day: number): string {
  const d = ((day % DAY_WRAP) + DAY_WRAP) % DAY_WRAP;
  return (BASE32[d >> 5] ?? "a") + (BASE32[d & 31] ?? "a");
}

function mac(key: Buffer, kind: VerpKind, list: string, member: string, day: number): string {
  const h = createHmac("sha256", key)
    .update(`qrunner-verp\0${kind}\0${list.toLowerCase()}\0${member.toLowerCase()}\0${day}`)
    .digest();
  return base32(h.subarray(0, 5), MAC_CHARS);
}

/** The tag for `member` of `list` on the day of `now`. */
export function verpTag(key: Buffer, kind: VerpKind, list: string, member: string, now: number): string {
  const day = dayOf(now);
  return (kind === "probe" ? PROBE_MARK : "") + dayChars(day) + mac(key, kind, list, member, day);
}

/**
 * Check a tag against the list and member it came with, at `now` (for a queued bounce, the time it
 * was received). Constant-time on the MAC.
 */
export function verifyVerpTag(
  key: Buffer,
  list: string,
  member: string,
  tag: string | undefined,
  now: number,
): VerpVerdict {
  if (tag === undefined || tag === "")
    return {
      ok: false,
      problem: "unsigned",
      reason: "unsigned VERP address (qrunner signs the ones it sends)",
    };
  const t = tag.toLowerCase();
  const kind: VerpKind = t.length === TAG_CHARS + 1 && t.startsWith(PROBE_MARK) ? "probe" : "post";
  const body = kind === "probe" ? t.slice(1) : t;
  if (body.length !== TAG_CHARS || ![...body].every((c) => BASE32.includes(c)))
    return { ok: false, problem: "malformed", reason: "the VERP tag is not one qrunner makes" };
  const tagDay = BASE32.indexOf(body[0] ?? "") * 32 + BASE32.indexOf(body[1] ?? "");
  const today = dayOf(now);
  const age = (((today - tagDay) % DAY_WRAP) + DAY_WRAP) % DAY_WRAP;
  // age DAY_WRAP - 1 is "tomorrow": the signer's clock a little ahead of ours
  const day = age === DAY_WRAP - 1 ? today + 1 : today - age;
  const want = Buffer.from(mac(key, kind, list, member, day));
  const got = Buffer.from(body.slice(2));
  if (!timingSafeEqual(want, got))
    return {
      ok: false,
      problem: "forged",
      reason: "the VERP tag does not verify (forged, or made for another member or list)",
    };
  if (age > VERP_VALID_DAYS && age !== DAY_WRAP - 1)
    return {
      ok: false,
      problem: "stale",
      reason: `the VERP tag is ${age} days old (valid for ${VERP_VALID_DAYS} days)`,
    };
  return { ok: true, kind, day };
}

/**
 * The signed VERP envelope sender for one member:
 * `dev-bounces+alice=example.net+TTHHHHHHHH@example.org` (`+pTT...` for a probe).
 */
export function signedVerpAddress(
  list: Pick<ListConfig, "name" | "domain" | "address">,
  member: string,
  key: Buffer,
  now: number,
  kind: VerpKind = "post",
): string {
  const m = normalizeAddress(member);
  const at = m.lastIndexOf("@");
  if (at <= 0) throw new InvalidAddressError(member, "no '@domain'");
  const tag = verpTag(key, kind, list.address, m, now);
  return `${list.name}-bounces+${m.slice(0, at)}=${m.slice(at + 1)}+${tag}@${list.domain}`;
}

/** The VERP part of a routed -bounces address (src/lists/addresses.ts `Route`). */
export interface VerpRoute {
  list: Pick<ListConfig, "address" | "verp" | "verp_probes">;
  /** the text after `-bounces+`, when there was one */
  verpSuffix?: string;
  verpMember?: string;
  verpTag?: string;
}

/**
 * Why intake refuses this -bounces address, or null when it takes it: a plain `-bounces` address, or
 * a VERP address whose tag verifies for its list and member. Refused: a `+` part that names no member,
 * VERP to a list with `verp: false` (a probe address only when the list has `verp_probes`), unsigned,
 * forged or stale tags. `key` is called only when there is a tag to check.
 */
export function verpRefusal(route: VerpRoute, key: () => Buffer, now: number): string | null {
  if (route.verpSuffix === undefined) return null;
  const list = route.list.address;
  if (route.verpMember === undefined)
    return `not a VERP address of ${list}: the part after -bounces+ names no member`;
  const probe =
    (route.verpTag ?? "").toLowerCase().startsWith(PROBE_MARK) &&
    (route.verpTag ?? "").length === TAG_CHARS + 1;
  if (!route.list.verp && !(probe && route.list.verp_probes))
    return `${list} does not use VERP (verp: false); bounces go to its plain -bounces address`;
  const v = verifyVerpTag(key(), list, route.verpMember, route.verpTag, now);
  return v.ok ? null : `${v.reason}: refused for ${list}`;
}

/**
 * The site's VERP secrets, one per state directory, read (or made) on first use and kept. Each user
 * (a runner, the LMTP listener, one inject) holds its own instance.
 */
export class VerpKeys {
  private readonly keys = new Map<string, Buffer>();

  /** The secret of `stateDir`; throws VerpKeyError when it cannot be read or made. */
  get(stateDir: string): Buffer {
    const dir = path.resolve(stateDir);
    let key = this.keys.get(dir);
    if (!key) {
      key = loadOrCreateKey(dir);
      this.keys.set(dir, key);
    }
    return key;
  }
}

function parseKey(file: string, text: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/i.test(hex))
    throw new VerpKeyError(
      file,
      "not a VERP secret (64 hex digits); move it away to make a new one (VERP addresses sent before then stop verifying)",
    );
  return Buffer.from(hex, "hex");
}

function readKey(file: string): Buffer | null {
  let text: string;
  try {
    text = readFileSync(file, "latin1");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new VerpKeyError(file, `cannot read the VERP secret: ${(err as Error).message}`, { cause: err });
  }
  return parseKey(file, text);
}

function loadOrCreateKey(dir: string): Buffer {
  const file = path.join(dir, VERP_KEY_FILE);
  const existing = readKey(file);
  if (existing) return existing;
  const tmp = path.join(dir, `.${VERP_KEY_FILE}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, randomBytes(32).toString("hex") + "\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      // link, not rename: when another process made the file meanwhile, its secret stays and is used
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    } finally {
      unlinkSync(tmp);
    }
    const d = openSync(dir, "r");
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch (err) {
    rmSync(tmp, { force: true });
    if (err instanceof VerpKeyError) throw err;
    throw new VerpKeyError(file, `cannot create the VERP secret: ${(err as Error).message}`, { cause: err });
  }
  const made = readKey(file);
  if (!made) throw new VerpKeyError(file, "the VERP secret vanished right after it was made");
  return made;
}
