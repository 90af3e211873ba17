/**
 * One list's runtime state, `<state>/lists/<list-address>/state.json`: what mail commands and bounces
 * change (members added or removed by mail, disabled members and bounce scores, confirmation tokens,
 * reply rates). It never lives in the files people edit, so an operator's edit and a worker's update
 * cannot overwrite each other.
 *
 * Several worker processes update one list: `update` takes a proper-lockfile lock, reads, applies the
 * change and replaces the file atomically (temp file, fsync, rename, directory fsync). Readers never
 * lock; they always see one whole version of the file.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import lockfile from "proper-lockfile";
import { writeFileAtomic } from "../util/atomic.js";
import { QrunnerError } from "../util/errors.js";
import { normalizeAddress, validateAddress } from "./addresses.js";
import type { MemberBounceState } from "./bounces/score.js";

/**
 * Bounce and delivery state of one member: the bounce scorer's shape (score, lastBounce, lastCounted
 * as a UTC day, disabled {reason, at}), kept here as that module defines it.
 */
export type MemberState = MemberBounceState;

/** A join or leave waiting for its confirmation reply. */
export interface PendingAction {
  action: "join" | "leave";
  address: string;
  /** ms epoch */
  created: number;
  /** ms epoch after which the token is refused */
  expires: number;
}

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
}

export function emptyState(): ListState {
  return { version: 1, added: [], removed: [], members: {}, replies: {}, tokens: {}, unrecognisedBounces: 0 };
}

/**
 * Where a state file is not what we can read: the path of the first bad value (dot-joined, "" for the
 * whole file) and what is wrong with it, worded as zod words it.
 */
class StateShapeError extends Error {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(message);
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

/** A pending confirmation: exactly its four fields (others are dropped). */
function token(v: unknown, where: string): PendingAction {
  const t = object(v, where);
  const action = t["action"];
  if (action !== "join" && action !== "leave")
    throw typeof action === "string"
      ? new StateShapeError(
          at(where, "action"),
          `Invalid enum value. Expected 'join' | 'leave', received '${action}'`,
        )
      : expected("'join' | 'leave'", action, at(where, "action"));
  return {
    action,
    address: str(t["address"], at(where, "address")),
    created: num(t["created"], at(where, "created")),
    expires: num(t["expires"], at(where, "expires")),
  };
}

/**
 * A parsed state.json checked as a ListState: absent fields get their defaults, unknown keys are kept
 * (except in tokens). Throws StateShapeError at the first bad value, in field order.
 */
function checkListState(json: unknown): ListState {
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

const HOUR = 3_600_000;

/**
 * Rate limit for command replies (the list's `max_replies_per_hour`): true, and the reply counted,
 * when `addr` has had fewer than `maxPerHour` replies in the last hour; false when it must get none.
 * Stops a forged sender or a mail loop from turning the list into a mail cannon. Old records of every
 * address are pruned on the way, so the file stays small.
 */
export function takeReplySlot(state: ListState, addr: string, now: number, maxPerHour: number): boolean {
  for (const [a, times] of Object.entries(state.replies)) {
    const recent = times.filter((t) => t > now - HOUR);
    if (recent.length > 0) state.replies[a] = recent;
    else delete state.replies[a];
  }
  const key = normalizeAddress(addr);
  const times = Object.hasOwn(state.replies, key) ? (state.replies[key] ?? []) : [];
  if (times.length >= maxPerHour) return false;
  state.replies[key] = [...times, now];
  return true;
}

/** state.json exists but is not a state file we can read: an operator must repair or remove it. */
export class StateCorruptError extends QrunnerError {
  readonly file: string;
  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super(
      "ESTATE_CORRUPT",
      `${file}: not a readable list state file (${detail}); repair it or move it away`,
      options,
    );
    this.file = file;
  }
}

/** The lock on a list's state could not be taken or was lost (another process holding it too long, permissions). */
export class StateLockError extends QrunnerError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super("ESTATE_LOCK", `${file}: ${message}`, options);
    this.file = file;
  }
}

/**
 * `<stateDir>/lists/<list-address>`: the address is validated and lowercased first, so it can never
 * name anything outside `<stateDir>/lists` and one list has one directory whatever its spelling.
 */
export function listStateDir(stateDir: string, listAddress: string): string {
  const name = validateAddress(listAddress).toLowerCase();
  const root = path.resolve(stateDir, "lists");
  const dir = path.resolve(root, name);
  // validation already excludes "/" and "..": this is the second lock on the same door
  if (path.dirname(dir) !== root || name === "." || name === "..") {
    throw new StateLockError(
      dir,
      `list address ${JSON.stringify(listAddress)} does not name a directory under ${root}`,
    );
  }
  return dir;
}

/** mkdir -p with 0700 for what it creates. */
export async function ensureDir(dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
}

// shared with the host health records; kept exported here for the list modules that import it
export { writeFileAtomic };

export interface ListStateStoreOptions {
  /** a lock not refreshed for this long (ms) is taken to belong to a dead process; default 10000 */
  stale?: number;
  /** how many times to retry a held lock, with randomized exponential backoff; default 100 (about 10 s) */
  retries?: number;
}

export class ListStateStore {
  readonly dir: string;
  readonly file: string;
  readonly listAddress: string;
  private readonly stale: number;
  private readonly retries: number;
  /** updates of this instance run one after another; the file lock orders them against other processes */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string, listAddress: string, opts: ListStateStoreOptions = {}) {
    this.dir = listStateDir(stateDir, listAddress);
    this.file = path.join(this.dir, "state.json");
    this.listAddress = listAddress;
    this.stale = opts.stale ?? 10_000;
    this.retries = opts.retries ?? 100;
  }

  /** The current state, without locking; an empty state when the list has none yet. */
  async read(): Promise<ListState> {
    let text: string;
    try {
      text = await fsp.readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return emptyState();
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new StateCorruptError(this.file, "not JSON", { cause: err });
    }
    try {
      return checkListState(json);
    } catch (err) {
      if (!(err instanceof StateShapeError)) throw err;
      throw new StateCorruptError(this.file, `${err.where || "(top)"}: ${err.message}`, { cause: err });
    }
  }

  /**
   * Read under the lock, let `fn` change the state (in place), write it back atomically, return what
   * `fn` returned. If `fn` throws nothing is written; if it changed nothing nothing is written either.
   */
  update<T>(fn: (state: ListState) => T | Promise<T>): Promise<T> {
    const run = this.tail.then(
      () => this.locked(fn),
      () => this.locked(fn),
    );
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async locked<T>(fn: (state: ListState) => T | Promise<T>): Promise<T> {
    await ensureDir(this.dir);
    const lock: { lost: Error | null } = { lost: null };
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.file, {
        realpath: false,
        stale: this.stale,
        retries: { retries: this.retries, factor: 1.3, minTimeout: 5, maxTimeout: 250, randomize: true },
        // the default throws from a timer and kills the process; we refuse the write instead
        onCompromised: (err) => {
          lock.lost = err;
        },
      });
    } catch (err) {
      throw new StateLockError(this.file, `cannot lock list state: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      const state = await this.read();
      const before = JSON.stringify(state);
      const result = await fn(state);
      const after = JSON.stringify(state, null, 2) + "\n";
      if (JSON.stringify(state) !== before) {
        if (lock.lost) {
          throw new StateLockError(this.file, "lock lost before writing; the update was not saved", {
            cause: lock.lost,
          });
        }
        await writeFileAtomic(this.file, after);
      }
      return result;
    } finally {
      try {
        await release();
      } catch {
        // a compromised lock cannot be released; it has already been reported above
      }
    }
  }
}
