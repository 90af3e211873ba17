/**
 * The shape of a list's `state.json` (ListState and its parts) and the hand-written check that a parsed
 * file has it. Separate from the store in state.ts because the pure modules that change a state
 * (members, tokens, replies) and the cache need the shape but not the locking and file I/O.
 */
import { QrunnerError } from "../util/errors.js";
import type { MemberBounceState } from "./bounces/score.js";

/**
 * Bounce and delivery state of one member: the bounce scorer's shape (score, lastBounce, lastCounted
 * as a UTC day, disabled {reason, at}), kept here as that module defines it.
 */
export type MemberState = MemberBounceState;

/** A join or leave waiting for its confirmation reply. */
export interface MembershipToken {
  action: "join" | "leave";
  address: string;
  /** ms epoch */
  created: number;
  /** ms epoch after which the token is refused */
  expires: number;
}

/** A held post a moderator may act on by replying to its notice (src/lists/moderation-reply.ts). */
export interface ModerationToken {
  action: "moderate";
  /** the held post's id */
  held: string;
  created: number;
  expires: number;
}

/** What a confirmation token stands for. */
export type PendingAction = MembershipToken | ModerationToken;

export interface ListState {
  version: 1;
  /** members who joined by mail (not in the list file), normalized */
  added: string[];
  /** file members who left by mail, normalized */
  removed: string[];
  /** keyed by normalized address */
  members: Record<string, MemberState>;
  /** ms epochs of command replies sent to each address within the last hour */
  replies: Record<string, number[]>;
  /** confirmation tokens, keyed by token */
  tokens: Record<string, PendingAction>;
  /** bounces to the list whose recipient could not be recognised */
  unrecognisedBounces: number;
  /** feedback-loop complaints (RFC 5965) received at the list's -bounces addresses; never scored */
  complaints?: number;
  /** VERP bounces whose tag did not verify (forged, stale, unsigned); never scored */
  forgedBounces?: number;
  /** forwarding of unrecognised bounces: src/lists/unrecognised.ts */
  unrecognised?: UnrecognisedState;
  /** bounce probes sent and not yet answered (verp_probes), keyed by normalized member address */
  probes?: Record<string, { sent: number }>;
  /** rejection notices sent within the last hour (ms epochs), and how many the cap held back */
  rejections?: { sent: number[]; suppressed: number };
}

/** One unrecognised bounce as the hourly digest lists it (strings already one printable line). */
export interface DigestItem {
  at: number;
  from: string;
  subject: string;
  size: number;
  reason: string;
}

export interface UnrecognisedState {
  /** ms epochs of the bounces forwarded whole within the last hour */
  forwarded: number[];
  /** bounces dropped (unrecognized_bounces: discard) */
  discarded: number;
  /** bounces past the hourly budget waiting for the digest: at most DIGEST_ITEMS listed, all counted */
  digest?: { since: number; count: number; items: DigestItem[] };
}

export function emptyState(): ListState {
  return { version: 1, added: [], removed: [], members: {}, replies: {}, tokens: {}, unrecognisedBounces: 0 };
}

/**
 * Where a state file is not what we can read: the path of the first bad value (dot-joined, "" for the
 * whole file) and what is wrong with it, worded as zod words it.
 */
export class StateShapeError extends QrunnerError {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super("ESTATE_SHAPE", message);
  }
}

/** A JSON value's type as the messages name it. */
function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number" && Number.isNaN(v)) return "nan";
  return typeof v;
}

function expected(what: string, v: unknown, where: string): StateShapeError {
  return new StateShapeError(where, v === undefined ? "Required" : `Expected ${what}, received ${typeOf(v)}`);
}

const at = (where: string, key: string | number): string => (where === "" ? String(key) : `${where}.${key}`);

type JsonObject = Record<string, unknown>;

function object(v: unknown, where: string): JsonObject {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw expected("object", v, where);
  return v as JsonObject;
}

function num(v: unknown, where: string): number {
  if (typeof v !== "number" || Number.isNaN(v)) throw expected("number", v, where);
  return v;
}

function str(v: unknown, where: string): string {
  if (typeof v !== "string") throw expected("string", v, where);
  return v;
}

function array<T>(v: unknown, where: string, item: (x: unknown, where: string) => T): T[] {
  if (!Array.isArray(v)) throw expected("array", v, where);
  return v.map((x, i) => item(x, at(where, i)));
}

/** An object whose own values each pass `value` (a record keyed by address or token). */
function record<T>(v: unknown, where: string, value: (x: unknown, where: string) => T): Record<string, T> {
  // fromEntries defines each key as data, a "__proto__" key included
  return Object.fromEntries(Object.entries(object(v, where)).map(([k, x]) => [k, value(x, at(where, k))]));
}

/**
 * `checked` (the known fields, in order; undefined ones left out) followed by the keys of `o` that are
 * not among them: unknown keys are kept, so a newer writer's fields survive an older reader's update.
 */
function withRest(o: JsonObject, checked: JsonObject): JsonObject {
  const known = Object.entries(checked).filter(([, v]) => v !== undefined);
  const rest = Object.entries(o).filter(([k]) => !Object.hasOwn(checked, k));
  return Object.fromEntries([...known, ...rest]);
}

const opt = <T>(v: unknown, where: string, check: (x: unknown, where: string) => T): T | undefined =>
  v === undefined ? undefined : check(v, where);

function disabled(v: unknown, where: string): JsonObject {
  const d = object(v, where);
  return withRest(d, { reason: str(d["reason"], at(where, "reason")), at: num(d["at"], at(where, "at")) });
}

/** A member's bounce state. */
function member(v: unknown, where: string): JsonObject {
  const m = object(v, where);
  const score = m["score"] === undefined ? 0 : num(m["score"], at(where, "score"));
  if (!Number.isFinite(score)) throw new StateShapeError(at(where, "score"), "Number must be finite");
  return withRest(m, {
    score,
    lastBounce: opt(m["lastBounce"], at(where, "lastBounce"), num),
    lastCounted: opt(m["lastCounted"], at(where, "lastCounted"), str),
    disabled: opt(m["disabled"], at(where, "disabled"), disabled),
  });
}

function times(t: JsonObject, where: string): { created: number; expires: number } {
  return {
    created: num(t["created"], at(where, "created")),
    expires: num(t["expires"], at(where, "expires")),
  };
}

/** A pending confirmation: exactly the fields of its kind (others are dropped). */
function token(v: unknown, where: string): PendingAction {
  const t = object(v, where);
  const action = t["action"];
  if (action !== "join" && action !== "leave" && action !== "moderate")
    throw typeof action === "string"
      ? new StateShapeError(
          at(where, "action"),
          `Invalid enum value. Expected 'join' | 'leave' | 'moderate', received '${action}'`,
        )
      : expected("'join' | 'leave' | 'moderate'", action, at(where, "action"));
  if (action === "moderate") {
    const held = str(t["held"], at(where, "held"));
    return { action, held, ...times(t, where) };
  }
  const address = str(t["address"], at(where, "address"));
  return { action, address, ...times(t, where) };
}

/**
 * A parsed state.json checked as a ListState: absent fields get their defaults, unknown keys are kept
 * (except in tokens). Throws StateShapeError at the first bad value, in field order.
 */
export function checkListState(json: unknown): ListState {
  const s = object(json, "");
  if (s["version"] !== 1) throw new StateShapeError("version", "Invalid literal value, expected 1");
  const orEmpty = <T>(v: unknown, empty: T): unknown => (v === undefined ? empty : v);
  const checked = {
    version: 1,
    added: array(orEmpty(s["added"], []), "added", str),
    removed: array(orEmpty(s["removed"], []), "removed", str),
    members: record(orEmpty(s["members"], {}), "members", member),
    replies: record(orEmpty(s["replies"], {}), "replies", (v, where) => array(v, where, num)),
    tokens: record(orEmpty(s["tokens"], {}), "tokens", token),
    unrecognisedBounces: num(orEmpty(s["unrecognisedBounces"], 0), "unrecognisedBounces"),
  };
  const n = checked.unrecognisedBounces;
  if (!Number.isInteger(n))
    throw new StateShapeError("unrecognisedBounces", "Expected integer, received float");
  if (n < 0) throw new StateShapeError("unrecognisedBounces", "Number must be greater than or equal to 0");
  return withRest(s, checked) as unknown as ListState;
}
