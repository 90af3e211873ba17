/**
 * Watches the config file and the lists folder (chokidar 4) and reports a change once the edits
 * settle (debounced), so that an editor's write-rename-chmod sequence or a `cp -r` of many list
 * files becomes one reload.
 */
import path from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";

export interface ConfigWatcherOptions {
  configFile: string;
  listsDir: string;
  logger: Logger;
  /** called once edits have been quiet this long (default 300 ms) */
  debounceMs?: number;
  /** the paths that changed since the last call */
  onChange: (paths: string[]) => void;
}

export class ConfigWatcher {
  private timer: NodeJS.Timeout | null = null;
  private pending = new Set<string>();
  private closed = false;
  private listsDir: string;

  private constructor(
    private readonly watchers: { config: FSWatcher; lists: FSWatcher },
    private readonly opts: ConfigWatcherOptions,
  ) {
    this.listsDir = path.resolve(opts.listsDir);
  }

  /** Resolves once the initial scans are done, so an edit made after that is never missed. */
  static async start(opts: ConfigWatcherOptions): Promise<ConfigWatcher> {
    const file = path.resolve(opts.configFile);
    const dir = path.dirname(file);
    // the directory, not the file: a watch on the file itself is lost once the file is removed
    // (an editor saving by rename, or `rm` then a new copy)
    const config = watch(dir, {
      ignoreInitial: true,
      depth: 0,
      atomic: true,
      ignored: (p: string) => p !== dir && p !== file,
    });
    const lists = watch(path.resolve(opts.listsDir), {
      ignoreInitial: true,
      atomic: true,
      // editor droppings (vim swap files, emacs locks and backups) are no edits
      ignored: (p: string) => /(^|[/\\])(\.#|#)|\.sw[px]$|~$/.test(p),
    });
    const self = new ConfigWatcher({ config, lists }, opts);
    for (const w of [config, lists]) {
      w.on("all", (_event, p) => self.touch(p));
      w.on("error", (err) => opts.logger.warn({ err: describeError(err) }, "config watcher error"));
    }
    await Promise.all(
      [config, lists].map((w) => new Promise<void>((resolve) => w.once("ready", () => resolve()))),
    );
    return self;
  }

  /** The config moved the lists folder: watch the new one instead. */
  setListsDir(dir: string): void {
    const next = path.resolve(dir);
    if (this.closed || next === this.listsDir) return;
    void this.watchers.lists.unwatch(this.listsDir);
    this.watchers.lists.add(next);
    this.listsDir = next;
  }

  private touch(p: string): void {
    if (this.closed) return;
    this.pending.add(p);
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const paths = [...this.pending];
      this.pending.clear();
      this.opts.onChange(paths);
    }, this.opts.debounceMs ?? 300);
  }

  /** Stop watching; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all([this.watchers.config.close(), this.watchers.lists.close()]);
  }
}
