/**
 * Held-post ids: 10 characters of Crockford base32 (50 random bits), short enough to type, unique
 * across lists, so `qrunner approve ID` needs no list name. Separate from the store in held.ts: naming a
 * post (from a queue entry, at random, or as an operator types it) touches no file.
 */
import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const ID_LENGTH = 10;
/** a well-formed id, as normalizeHeldId returns it and the store names its files */
export const ID_RE = /^[0-9abcdefghjkmnpqrstvwxyz]{10}$/;

/** Operators may type ids in capitals, and with the letters base32 leaves out (I, L → 1, O → 0). */
export function normalizeHeldId(id: string): string | null {
  const s = id.trim().toLowerCase().replace(/[il]/g, "1").replace(/o/g, "0");
  return ID_RE.test(s) ? s : null;
}

/**
 * The held id of a queue entry, derived from its sha1: holding the same entry again (a runner that
 * crashed after holding it, before finishing the entry) finds the post already held.
 */
export function heldIdFor(entryId: string): string {
  let id = "";
  for (let i = 0; i < ID_LENGTH; i++) id += ALPHABET[parseInt(entryId.slice(i * 2, i * 2 + 2), 16) & 31];
  return id;
}

export function newHeldId(): string {
  const bytes = randomBytes(ID_LENGTH);
  let id = "";
  for (const b of bytes) id += ALPHABET[b & 31];
  return id;
}
