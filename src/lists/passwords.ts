/**
 * Password hashes: scrypt (node:crypto) with a random salt, the parameters stored with the hash as
 * `scrypt$N$r$p$salt$hash` (salt and hash base64url), so a later change of the defaults still verifies
 * the hashes written before it. A list's moderator password (`moderator_password` in the list file,
 * set by `qrunner list password`) is one; the web console's operator accounts reuse the same helpers.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";
import type { ListConfig } from "./schema.js";

/** What a stored hash looks like (the list schema checks `moderator_password` with it). */
export const PASSWORD_HASH_RE =
  /^scrypt\$[1-9]\d{0,7}\$[1-9]\d{0,2}\$[1-9]\d{0,2}\$[A-Za-z0-9_-]{16,128}\$[A-Za-z0-9_-]{16,128}$/;

/**
 * The defaults: N = 2^14, r = 8, p = 1 (16 MiB, some tens of ms), the interactive-login figures of the
 * scrypt paper and OWASP. A post carrying `Approved:` costs one verification.
 */
export const SCRYPT_DEFAULTS = { N: 16384, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Longer passwords are refused (hashing is linear in them, but nobody types a megabyte). */
export const MAX_PASSWORD_LENGTH = 1024;
/**
 * Stored parameters above these are refused rather than computed: a hand-edited hash must not make
 * one login (or one post with `Approved:`) cost seconds and gigabytes.
 */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

function scrypt(password: string, salt: Buffer, keylen: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize("NFC"), salt, keylen, o, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** scrypt needs 128·N·r bytes; the default maxmem (32 MiB) is just enough for the defaults. */
function options(N: number, r: number, p: number): ScryptOptions {
  return { N, r, p, maxmem: 128 * N * r + 1024 * 1024 };
}

/** Hash `password` for storage. Throws RangeError for an empty or over-long password. */
export async function hashPassword(
  password: string,
  params: { N: number; r: number; p: number } = SCRYPT_DEFAULTS,
): Promise<string> {
  if (password.length === 0) throw new RangeError("the password is empty");
  if (password.length > MAX_PASSWORD_LENGTH)
    throw new RangeError(`the password is longer than ${MAX_PASSWORD_LENGTH} characters`);
  const { N, r, p } = params;
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, options(N, r, p));
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

interface Parsed {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parse(stored: string): Parsed | null {
  if (!PASSWORD_HASH_RE.test(stored)) return null;
  const [, n, r, p, salt, key] = stored.split("$");
  const N = Number(n);
  const parsed = {
    N,
    r: Number(r),
    p: Number(p),
    salt: Buffer.from(salt ?? "", "base64url"),
    key: Buffer.from(key ?? "", "base64url"),
  };
  // N a power of two above 1 (scrypt's own rule), every parameter within the bounds above
  if (N < 2 || N > MAX_N || (N & (N - 1)) !== 0 || parsed.r > MAX_R || parsed.p > MAX_P) return null;
  if (parsed.key.length < 16) return null;
  return parsed;
}

/** Does `password` match `stored` (a hashPassword result)? False for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parse(stored);
  if (!h || password.length === 0 || password.length > MAX_PASSWORD_LENGTH) return false;
  const key = await scrypt(password, h.salt, h.key.length, options(h.N, h.r, h.p));
  return timingSafeEqual(key, h.key);
}

/** Is `password` the list's moderator password? False when the list has none. */
export async function verifyListPassword(
  list: Pick<ListConfig, "moderator_password">,
  password: string,
): Promise<boolean> {
  return list.moderator_password === undefined ? false : verifyPassword(password, list.moderator_password);
}
