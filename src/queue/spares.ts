/**
 * Recycled entry files (`qfiles/.spare/`).
 *
 * Creating a file is the dearest step of a durable enqueue on ext4: on the machine we measured
 * (ext4 without a journal, mounted with `discard`) allocating an inode costs 0.2 to 0.7 ms of kernel
 * time, because the allocator skips inodes deleted in the last moments, and deleting a file issues a
 * discard to the disk. Renaming an existing file and writing over it costs about 0.06 ms. A message
 * moves through several files (incoming, then outgoing), so instead of unlinking a finished entry the
 * Switchboard parks its file here, and the next enqueue in this process (or any other: the directory
 * is shared) renames a spare into place as its temp file and writes over it. PostgreSQL recycles its
 * WAL segment files for the same reasons.
 *
 * A crash at any point leaves at worst a spare more or less, never a lost or doubled entry, because
 * taking and giving back are single renames; a taken spare is emptied before it is written (write.ts),
 * so a power loss that keeps a new name but drops unsynced bytes leaves an empty file, never the
 * spare's old entry resurrected; a writer never writes into a spare whose inode has
 * another name too (see writeTemp in write.ts). A spare keeps the bytes of the entry it last held until
 * it is reused (or the pool is cleared): like the queue, the pool is readable only by the daemon's
 * user. Entries removed by an operator (`queue delete`) are unlinked, never recycled. The pool is
 * bounded (`max` files); beyond it finished entries are unlinked as before.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, renameSync } from "node:fs";
import path from "node:path";
import { isErrno } from "./files.js";

export interface SparePoolOptions {
  /** most files kept in the pool (default 1024) */
  max?: number;
  /** list the directory again at most this often when this process knows of no spare (ms, default 100) */
  relistMs?: number;
}

export const SPARE_DIR = ".spare";

export class SparePool {
  readonly dir: string;
  private readonly max: number;
  private readonly relistMs: number;
  private readonly prefix = `${process.pid}.${randomBytes(4).toString("hex")}.`;
  /** spare names this process believes are there (others may take them first) */
  private known: string[] = [];
  /** estimate of the files in the pool */
  private size = 0;
  private listedAt = Number.NEGATIVE_INFINITY;
  private seq = 0;
  private dirReady = false;
  /** renames across filesystems fail: then the pool is not used at all */
  private disabled = false;

  constructor(root: string, opts: SparePoolOptions = {}) {
    this.dir = path.join(root, SPARE_DIR);
    this.max = opts.max ?? 1024;
    this.relistMs = opts.relistMs ?? 100;
  }

  /**
   * Park a finished entry file instead of unlinking it. False when the pool is full or cannot be
   * used: the caller unlinks the file then.
   */
  offer(file: string): boolean {
    if (this.disabled) return false;
    if (this.size >= this.max) {
      this.relist();
      if (this.size >= this.max) return false;
    }
    const name = this.prefix + (this.seq++).toString(36);
    const spare = path.join(this.dir, name);
    try {
      this.ensureDir();
      renameSync(file, spare);
    } catch (err) {
      if (isErrno(err, "EXDEV")) this.disabled = true;
      // the pool's directory was removed (by an operator): make it again next time
      else if (isErrno(err, "ENOENT")) this.dirReady = false;
      return false;
    }
    this.known.push(name);
    this.size++;
    return true;
  }

  /**
   * Rename a spare to `target` (a temp file name in a queue directory on the same filesystem). True
   * when it did: the caller opens it for writing without O_CREAT, writes from offset 0 and truncates
   * it to what it wrote. False when none is at hand: create the file.
   */
  take(target: string): boolean {
    if (this.disabled) return false;
    for (let relisted = false; ;) {
      const name = this.known.pop();
      if (name === undefined) {
        if (relisted || !this.relist()) return false;
        relisted = true;
        continue;
      }
      try {
        renameSync(path.join(this.dir, name), target);
        this.size = Math.max(0, this.size - 1);
        return true;
      } catch (err) {
        if (isErrno(err, "ENOENT")) {
          // another process took it first (or the target's directory is gone: then creating fails too)
          this.size = Math.max(0, this.size - 1);
          continue;
        }
        if (isErrno(err, "EXDEV")) this.disabled = true;
        return false;
      }
    }
  }

  /** List the directory again, at most once per `relistMs`; true when it did. */
  private relist(): boolean {
    const now = Date.now();
    if (now - this.listedAt < this.relistMs) return false;
    this.listedAt = now;
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      names = []; // not created yet
    }
    this.size = names.length;
    // start at a random place, so that processes listing together do not race for the same names
    const at = names.length ? Math.floor(Math.random() * names.length) : 0;
    this.known = names.slice(at).concat(names.slice(0, at));
    return true;
  }

  private ensureDir(): void {
    if (this.dirReady) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.dirReady = true;
  }
}
