/**
 * One list's runtime state, `<state>/lists/<list-address>/state.json`: what mail commands and bounces
 * change (members added or removed by mail, disabled members and bounce scores, confirmation tokens,
 * reply rates). It never lives in the files people edit, so an operator's edit and a worker's update
 * cannot overwrite each other.
 *
 * Several worker processes update one list: `update` takes a proper-lockfile lock, reads, applies the
 * change and replaces the file atomically (temp file, fsync, rename, directory fsync). Readers never
 * lock; they always see one whole version of the file.
 *
 * The file's shape and its check are in state-shape.ts, the reply rate limit in replies.ts.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import lockfile from "proper-lockfile";
import { writeFileAtomic } from "../util/atomic.js";
import { QrunnerError } from "../util/errors.js";
import { validateAddress } from "./addresses.js";
import { StateShapeError, checkListState, emptyState, type ListState } from "./state-shape.js";

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
