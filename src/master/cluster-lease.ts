/**
 * Slice leases: `<qfiles>/.cluster/leases/<K>` is a proper-lockfile lock (an mkdir-made directory,
 * safe on NFS) whose mtime the holder refreshes every quarter of the lease time; a lease not
 * refreshed for the lease time is stale and another node may take it.
 *
 * proper-lockfile only reports a lock as compromised once it is already stale, which is too late:
 * by then another node may work the slice. So the refreshes are observed here (through the `fs`
 * proper-lockfile is given) and a lease whose last successful refresh is half a lease old is given up
 * at once: the caller kills its workers, and the directory is left to go stale (not removed, in case
 * the removal reached the server late and took a newer holder's lock).
 *
 * A lease taken over from a dead node can, in a narrow race, be taken by two nodes at once (both see
 * it stale, one removes the other's fresh directory). A new lease is therefore on probation until
 * proper-lockfile's first refresh has checked that the directory's mtime is still ours and the owner
 * record beside it (`<K>.owner`, written right after taking it) still names us; only then may workers
 * run on it.
 */
import fs from "node:fs";
import { readFile, rename, unlink, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import path from "node:path";
import lockfile from "proper-lockfile";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";

/** Leases are given up (workers killed) this far into the lease time after the last refresh. */
export const FENCE_FRACTION = 0.5;

export interface LeaseManagerOptions {
  /** `<qfiles>/.cluster/leases` (must exist) */
  dir: string;
  node: string;
  leaseMs: number;
  logger: Logger;
  /** leases can no longer be trusted: stop every worker of these slices now */
  onLost: (slices: number[], why: string) => void;
}

interface Lease {
  slice: number;
  lockDir: string;
  token: string;
  release: () => Promise<void>;
  /** monotonic ms: when we returned from taking it */
  lockedAt: number;
  /** monotonic ms: when the last refresh that succeeded was issued (at first: before taking it) */
  confirmedAt: number;
  refreshed: boolean;
  /** passed probation */
  confirmed: boolean;
  /** workers may run on it (confirmed, and not being given up) */
  active: boolean;
}

type Cb = (err: NodeJS.ErrnoException | null) => void;

export class LeaseManager {
  private readonly leases = new Map<number, Lease>();
  /** lock directories a release must leave in place (given up, or taken by another node) */
  private readonly keep = new Set<string>();
  /** handed to proper-lockfile: node's fs, with refreshes observed and exit-time removal disabled */
  private readonly fs: object;

  constructor(private readonly opts: LeaseManagerOptions) {
    const refreshed = (dir: string, issuedAt: number): void => {
      for (const l of this.leases.values()) {
        if (l.lockDir !== dir) continue;
        l.confirmedAt = Math.max(l.confirmedAt, issuedAt);
        if (issuedAt > l.lockedAt) l.refreshed = true;
      }
    };
    this.fs = {
      mkdir: (p: string, cb: Cb) => fs.mkdir(p, cb),
      stat: (p: string, cb: (err: NodeJS.ErrnoException | null, st: fs.Stats) => void) => fs.stat(p, cb),
      realpath: (p: string, cb: (err: NodeJS.ErrnoException | null, r: string) => void) => fs.realpath(p, cb),
      rmdir: (p: string, cb: Cb) => (this.keep.has(p) ? cb(null) : fs.rmdir(p, cb)),
      utimes: (p: string, atime: Date, mtime: Date, cb: Cb) => {
        const issuedAt = performance.now();
        fs.utimes(p, atime, mtime, (err) => {
          if (!err) refreshed(p, issuedAt);
          cb(err);
        });
      },
      // proper-lockfile removes held locks when the process exits; a master that dies must instead
      // leave its leases to go stale, so that its orphaned workers are gone before anyone takes over
      rmdirSync: () => undefined,
    };
  }

  private lockDir(slice: number): string {
    return path.join(this.opts.dir, String(slice));
  }

  private ownerFile(slice: number): string {
    return path.join(this.opts.dir, `${slice}.owner`);
  }

  /** Slices held, on probation or active. */
  held(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  /** Slices whose lease is confirmed: workers may run on these. */
  active(): number[] {
    return [...this.leases.values()]
      .filter((l) => l.active)
      .map((l) => l.slice)
      .sort((a, b) => a - b);
  }

  isActive(slice: number): boolean {
    return this.leases.get(slice)?.active === true;
  }

  isConfirmed(slice: number): boolean {
    return this.leases.get(slice)?.confirmed === true;
  }

  /** Let workers run on a confirmed lease, or not (before giving it up gracefully). */
  setActive(slice: number, active: boolean): void {
    const l = this.leases.get(slice);
    if (l?.confirmed) l.active = active;
  }

  /** ms (monotonic, performance.now()) until which this lease may be worked; null when not held. */
  fenceAt(slice: number): number | null {
    const l = this.leases.get(slice);
    return l ? l.confirmedAt + this.opts.leaseMs * FENCE_FRACTION : null;
  }

  /**
   * Try to take the lease of a slice: true when taken (on probation), false when another node holds
   * it. A stale lease (its holder stopped refreshing it a lease time ago) is taken over.
   */
  async acquire(slice: number): Promise<boolean> {
    if (this.leases.has(slice)) return true;
    const lockDir = this.lockDir(slice);
    const startedAt = performance.now();
    let release: () => Promise<void>;
    // set once taken: a compromise report always concerns this very lease, never a later one
    let self: Lease | null = null;
    try {
      release = await lockfile.lock(lockDir, {
        lockfilePath: lockDir,
        realpath: false,
        stale: this.opts.leaseMs,
        update: Math.max(1000, Math.floor(this.opts.leaseMs / 4)),
        retries: 0,
        fs: this.fs,
        onCompromised: (err) => {
          if (self) this.compromised(self, err);
        },
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ELOCKED") return false;
      throw err;
    }
    const token = `${this.opts.node} ${process.pid} ${randomBytes(8).toString("hex")}`;
    const lease: Lease = {
      slice,
      lockDir,
      token,
      release,
      lockedAt: performance.now(),
      confirmedAt: startedAt,
      refreshed: false,
      confirmed: false,
      active: false,
    };
    self = lease;
    this.leases.set(slice, lease);
    try {
      const file = this.ownerFile(slice);
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify({ node: this.opts.node, token, at: Date.now() }) + "\n");
      await rename(tmp, file);
    } catch (err) {
      this.opts.logger.warn(
        { slice, err: describeError(err) },
        "cannot write the lease owner record; giving the lease up",
      );
      await this.abandon(lease);
      return false;
    }
    return true;
  }

  /**
   * Confirm the leases on probation whose first refresh went through and whose owner record still
   * names us; returns the slices that became active. A lease another node took at the same moment is
   * left to it.
   */
  async confirm(): Promise<number[]> {
    const done: number[] = [];
    for (const l of [...this.leases.values()]) {
      if (l.confirmed || !l.refreshed) continue;
      const owner = await this.readOwner(l.slice);
      if (this.leases.get(l.slice) !== l) continue;
      if (owner?.token !== l.token) {
        this.opts.logger.warn(
          { slice: l.slice, other: owner?.node ?? null },
          "another node took this lease at the same moment; leaving it to that node",
        );
        await this.abandon(l);
        continue;
      }
      l.confirmed = true;
      l.active = true;
      done.push(l.slice);
    }
    return done;
  }

  private async readOwner(slice: number): Promise<{ token?: unknown; node?: unknown } | null> {
    try {
      return JSON.parse(await readFile(this.ownerFile(slice), "utf8")) as { token?: unknown; node?: unknown };
    } catch {
      return null;
    }
  }

  /**
   * Give up every lease whose last refresh is too old to trust (FENCE_FRACTION of the lease time),
   * calling onLost for each; returns them. Called often, from a timer of its own.
   */
  check(now: number = performance.now()): number[] {
    const gone: number[] = [];
    let oldest = 0;
    for (const l of [...this.leases.values()]) {
      const age = now - l.confirmedAt;
      if (age <= this.opts.leaseMs * FENCE_FRACTION) continue;
      gone.push(l.slice);
      oldest = Math.max(oldest, age);
      this.leases.delete(l.slice);
      void this.abandon(l);
    }
    if (gone.length) this.opts.onLost(gone, `not refreshed for ${Math.round(oldest)} ms`);
    return gone;
  }

  /** proper-lockfile found the lease changed or gone under us: it has stopped refreshing it already */
  private compromised(l: Lease, err: unknown): void {
    if (this.leases.get(l.slice) !== l) return;
    this.leases.delete(l.slice);
    this.opts.onLost([l.slice], `compromised: ${describeError(err)}`);
  }

  /** Stop refreshing a lease without removing its directory: it goes stale and the next holder takes it. */
  private async abandon(l: Lease): Promise<void> {
    if (this.leases.get(l.slice) === l) this.leases.delete(l.slice);
    this.keep.add(l.lockDir);
    try {
      await l.release();
    } catch {
      // already released (compromised): nothing to stop
    } finally {
      this.keep.delete(l.lockDir);
    }
  }

  /** Release a lease for good (its workers have stopped): the owner record, then the directory. */
  async release(slice: number): Promise<void> {
    const l = this.leases.get(slice);
    if (!l) return;
    this.leases.delete(slice);
    // the record first: once the directory is gone, the next holder's record may be there
    if ((await this.readOwner(slice))?.token === l.token)
      await unlink(this.ownerFile(slice)).catch(() => undefined);
    try {
      await l.release();
    } catch (err) {
      this.opts.logger.warn(
        { slice, err: describeError(err) },
        "cannot release the lease; it goes stale instead",
      );
    }
  }

  /** Release every lease (the workers must be stopped). Safe to call twice. */
  async close(): Promise<void> {
    for (const slice of this.held()) await this.release(slice);
  }
}
