/**
 * Posts held for a moderator, `<state>/lists/<list>/held/<id>.held`: one file per post (the format is
 * in held-format.ts), written durably before `hold` resolves. Ids (held-ids.ts) are unique across
 * lists, so `qrunner approve ID` needs no list name.
 *
 * approve/reject/discard first claim a post by renaming it to `<id>.claimed`: of two moderators acting
 * on one post at once, exactly one wins. A claim left behind by a crash returns to held after
 * CLAIM_STALE_MS.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { fsyncDir } from "../util/dirsync.js";
import { QrunnerError } from "../util/errors.js";
import {
  HeldCorruptError,
  decode,
  encode,
  type HeldMeta,
  type HeldPost,
  type HoldMeta,
} from "./held-format.js";
import { ID_RE, newHeldId, normalizeHeldId } from "./held-ids.js";
import { ensureDir, listStateDir } from "./state.js";

const HELD = ".held";
const CLAIMED = ".claimed";
export const CLAIM_STALE_MS = 10 * 60_000;

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "ENOENT";
}

/** What `op` resolves to, or `fallback` when the file or directory is missing (removed meanwhile). */
async function unlessMissing<T>(op: Promise<T>, fallback: T): Promise<T> {
  try {
    return await op;
  } catch (err) {
    if (isMissing(err)) return fallback;
    throw err;
  }
}

/** A post taken out of the held set by one moderator command; finish with `done()` or `release()`. */
export interface ClaimedPost extends HeldPost {
  /** the action succeeded: delete the post */
  done(): Promise<void>;
  /** the action failed: put the post back */
  release(): Promise<void>;
}

export class HeldStore {
  readonly dir: string;
  readonly listAddress: string;

  constructor(stateDir: string, listAddress: string) {
    this.dir = path.join(listStateDir(stateDir, listAddress), "held");
    this.listAddress = listAddress;
  }

  private file(id: string, ext: string): string {
    return path.join(this.dir, id + ext);
  }

  /**
   * Store a post durably; resolves with its id once file and directory are on disk. With `fixedId`
   * (see heldIdFor) a post already held under that id is not held twice.
   */
  async hold(raw: Buffer, meta: HoldMeta, now: number = Date.now(), fixedId?: string): Promise<string> {
    await ensureDir(this.dir);
    for (;;) {
      const id = fixedId ?? newHeldId();
      const record: HeldMeta = {
        ...meta,
        version: 1,
        id,
        list: this.listAddress,
        heldAt: now,
        size: raw.length,
      };
      const tmp = path.join(this.dir, `.${id}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
      const h = await fsp.open(tmp, "wx", 0o600);
      try {
        await h.writeFile(encode(record, raw));
        await h.sync();
      } finally {
        await h.close();
      }
      try {
        // link, unlike rename, refuses to replace: a colliding id gets a new draw, never an overwrite
        await fsp.link(tmp, this.file(id, HELD));
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        if ((err as NodeJS.ErrnoException).code === "EEXIST") {
          if (fixedId !== undefined) return fixedId;
          continue;
        }
        throw err;
      }
      await fsp.rm(tmp, { force: true });
      await fsyncDir(this.dir);
      return id;
    }
  }

  /** Held posts, oldest first (metadata only). Unreadable files are skipped. */
  async list(now: number = Date.now()): Promise<HeldMeta[]> {
    await this.recoverClaims(now);
    const out: HeldMeta[] = [];
    for (const name of await this.names(HELD)) {
      try {
        out.push((await this.readFile(this.file(name, HELD))).meta);
      } catch (err) {
        if (isMissing(err) || err instanceof HeldCorruptError) continue;
        throw err;
      }
    }
    return out.sort((a, b) => a.heldAt - b.heldAt || a.id.localeCompare(b.id));
  }

  /** One held post, or null when there is none by that id. */
  async get(id: string, now: number = Date.now()): Promise<HeldPost | null> {
    const n = normalizeHeldId(id);
    if (n === null) return null;
    await this.recoverClaim(n, now);
    return unlessMissing(this.readFile(this.file(n, HELD)), null);
  }

  /** Delete a held post; false when there was none. */
  async remove(id: string): Promise<boolean> {
    const n = normalizeHeldId(id);
    if (n === null) return false;
    if (
      !(await unlessMissing(
        fsp.unlink(this.file(n, HELD)).then(() => true),
        false,
      ))
    )
      return false;
    await fsyncDir(this.dir);
    return true;
  }

  /** Is a moderator action working on this post right now (claimed, not yet done or released)? */
  async isClaimed(id: string): Promise<boolean> {
    const n = normalizeHeldId(id);
    if (n === null) return false;
    return unlessMissing(
      fsp.stat(this.file(n, CLAIMED)).then(() => true),
      false,
    );
  }

  /** Take a post for one moderator action; null when it is not held (unknown, or another has it). */
  async claim(id: string): Promise<ClaimedPost | null> {
    const n = normalizeHeldId(id);
    if (n === null) return null;
    const held = this.file(n, HELD);
    const claimed = this.file(n, CLAIMED);
    await this.recoverClaim(n, Date.now());
    // of two racing renames exactly one finds the file
    if (
      !(await unlessMissing(
        fsp.rename(held, claimed).then(() => true),
        false,
      ))
    )
      return null;
    // the claim's age is its mtime; rename alone keeps the hold time
    const t = new Date();
    await fsp.utimes(claimed, t, t);
    let post: HeldPost;
    try {
      post = await this.readFile(claimed);
    } catch (err) {
      await fsp.rename(claimed, held);
      throw err;
    }
    const dir = this.dir;
    return {
      ...post,
      async done() {
        await fsp.rm(claimed, { force: true });
        await fsyncDir(dir);
      },
      async release() {
        await fsp.rename(claimed, held);
      },
    };
  }

  /** Delete posts held longer than `holdExpires` ms; returns what went (for the log, or a notice). */
  async expire(now: number, holdExpires: number): Promise<HeldMeta[]> {
    await this.removeStaleTemps(now);
    const gone: HeldMeta[] = [];
    for (const meta of await this.list(now)) {
      if (meta.heldAt + holdExpires > now) continue;
      if (await this.remove(meta.id)) gone.push(meta);
    }
    return gone;
  }

  private async names(ext: string): Promise<string[]> {
    const entries = await unlessMissing(fsp.readdir(this.dir), []);
    return entries
      .filter((e) => e.endsWith(ext) && ID_RE.test(e.slice(0, -ext.length)))
      .map((e) => e.slice(0, -ext.length));
  }

  /** Temp files of a `hold` that died before linking its post in. */
  private async removeStaleTemps(now: number): Promise<void> {
    const entries = await unlessMissing(fsp.readdir(this.dir), []);
    for (const e of entries.filter((n) => n.startsWith(".") && n.endsWith(".tmp"))) {
      const f = path.join(this.dir, e);
      const st = await fsp.stat(f).catch(() => null);
      if (st && now - st.mtimeMs >= CLAIM_STALE_MS) await fsp.rm(f, { force: true });
    }
  }

  private async readFile(file: string): Promise<HeldPost> {
    return decode(file, await fsp.readFile(file));
  }

  /** Claims older than CLAIM_STALE_MS belong to a command that died: hold those posts again. */
  private async recoverClaims(now: number): Promise<void> {
    for (const id of await this.names(CLAIMED)) await this.recoverClaim(id, now);
  }

  private async recoverClaim(id: string, now: number): Promise<void> {
    const f = this.file(id, CLAIMED);
    const st = await unlessMissing(fsp.stat(f), null);
    if (st && now - st.mtimeMs >= CLAIM_STALE_MS)
      await unlessMissing(fsp.rename(f, this.file(id, HELD)), undefined);
  }
}

/** Two lists hold a post with the same id (50 random bits: in practice, a copied file). */
export class HeldAmbiguousError extends QrunnerError {
  constructor(id: string, lists: readonly string[]) {
    super(
      "EHELD_AMBIGUOUS",
      `held id ${id} exists in ${lists.join(" and ")}; use \`qrunner held LIST\` and remove the copy`,
    );
  }
}

/** Find a held post by id in any list under `stateDir`. */
export async function findHeld(
  stateDir: string,
  id: string,
): Promise<{ store: HeldStore; meta: HeldMeta } | null> {
  const n = normalizeHeldId(id);
  if (n === null) return null;
  const lists = await unlessMissing(fsp.readdir(path.join(stateDir, "lists")), []);
  const found: { store: HeldStore; meta: HeldMeta }[] = [];
  for (const name of lists) {
    let store: HeldStore;
    try {
      store = new HeldStore(stateDir, name);
    } catch {
      continue; // not a list directory
    }
    const post = await store.get(n);
    if (post) found.push({ store, meta: post.meta });
  }
  if (found.length > 1)
    throw new HeldAmbiguousError(
      n,
      found.map((f) => f.meta.list),
    );
  return found[0] ?? null;
}
