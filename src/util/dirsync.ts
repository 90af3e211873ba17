/**
 * Group commit of directory fsyncs. A rename is durable only once its directory is fsynced; when
 * several entries are renamed into one directory at about the same time, one fsync covers them all.
 * A caller whose rename happened while an fsync was already running must wait for the *next* one,
 * since the running one may have missed it.
 */
import { closeSync, fsync, openSync } from "node:fs";

export class DirSyncer {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  private started = 0;

  constructor(private readonly dir: string) {}

  /** Directory fsyncs started so far: how well concurrent callers were grouped (for tests and benches). */
  get fsyncs(): number {
    return this.started;
  }

  /** Resolves once an fsync of the directory that started after this call has completed. */
  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.fsyncOnce().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    if (!this.next) {
      const after = this.running.catch(() => undefined);
      this.next = after.then(() => {
        this.next = null;
        return this.sync();
      });
    }
    return this.next;
  }

  private fsyncOnce(): Promise<void> {
    this.started++;
    return fsyncDir(this.dir);
  }
}

/** fsync one directory now (no grouping). */
export async function fsyncDir(dir: string): Promise<void> {
  // open and close are cheap and done in place; only the fsync, which waits for the disk, goes to
  // the thread pool
  const fd = openSync(dir, "r");
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync an open descriptor in the thread pool. */
export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fsync(fd, (err) => (err ? reject(err) : resolve()));
  });
}
