/**
 * Which of the workers' tuning options (WORKER_EXEC_ARGV) the running node accepts. A node that does
 * not know an option refuses to start at all (`node: bad option`, exit 9), and V8 options come and go
 * between Node versions (`--interrupt-budget` is gone from the V8 of Node 22), so the master keeps
 * only the options this node accepts and leaves the others out, with a debug line each.
 *
 * An option Node lists in process.allowedNodeEnvironmentFlags is accepted without asking; the others
 * (V8's own options are never listed there) are tried once with `node OPTIONS -e 0`, and the answer
 * is kept in the state directory for this node binary and version, so that later starts pay nothing.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { Logger } from "../util/log.js";
import { writeFileAtomic } from "../util/atomic.js";
import { describeError } from "../util/errors.js";

/** What the cache file holds: the answers of one node binary of one version. */
interface FlagCache {
  node: string;
  version: string;
  accepted: Record<string, boolean>;
}

export interface NodeFlagOptions {
  /** where the answers are kept (e.g. `<state>/node-flags.json`); null: ask every time */
  cacheFile: string | null;
  logger: Logger;
  /** the node to ask; default this one (the master starts its workers with process.execPath) */
  nodePath?: string;
  /** how long one trial may take before its options count as refused, ms (default 10 s) */
  timeoutMs?: number;
}

/** The option's name, without its value: `--max-semi-space-size=1` → `--max-semi-space-size`. */
function nameOf(flag: string): string {
  const eq = flag.indexOf("=");
  return eq < 0 ? flag : flag.slice(0, eq);
}

/** Whether `node FLAGS -e 0` runs (exit 0) within the timeout. */
export function nodeAccepts(nodePath: string, flags: readonly string[], timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(nodePath, [...flags, "-e", "0"], { stdio: "ignore", timeout: timeoutMs });
    } catch {
      resolve(false);
      return;
    }
    child.on("error", () => resolve(false));
    child.on("exit", (code) => resolve(code === 0));
  });
}

async function readCache(file: string, node: string): Promise<Record<string, boolean>> {
  try {
    const c = JSON.parse(await readFile(file, "utf8")) as Partial<FlagCache>;
    if (c.node === node && c.version === process.version && typeof c.accepted === "object" && c.accepted)
      return c.accepted;
  } catch {
    // none yet, or unreadable: ask again
  }
  return {};
}

/**
 * The subset of `candidates` the node accepts, in their order. Never throws: an option whose answer
 * cannot be had is left out.
 */
export async function acceptedNodeFlags(
  candidates: readonly string[],
  opts: NodeFlagOptions,
): Promise<string[]> {
  const node = opts.nodePath ?? process.execPath;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const listed = node === process.execPath ? process.allowedNodeEnvironmentFlags : new Set<string>();
  const unlisted = candidates.filter((f) => !listed.has(nameOf(f)));
  const known = opts.cacheFile && unlisted.length ? await readCache(opts.cacheFile, node) : {};
  const unknown = unlisted.filter((f) => known[f] === undefined);
  if (unknown.length) {
    // one trial of them all; only when the node refuses that, one trial per option
    const all = await nodeAccepts(node, unknown, timeoutMs);
    const answers = all
      ? unknown.map(() => true)
      : await Promise.all(unknown.map((f) => nodeAccepts(node, [f], timeoutMs)));
    unknown.forEach((f, i) => (known[f] = answers[i] ?? false));
    if (opts.cacheFile) {
      const cache: FlagCache = { node, version: process.version, accepted: known };
      await writeFileAtomic(opts.cacheFile, JSON.stringify(cache) + "\n").catch((err: unknown) =>
        opts.logger.debug({ file: opts.cacheFile, err: describeError(err) }, "cannot keep the node options"),
      );
    }
  }
  const accepted = candidates.filter((f) => listed.has(nameOf(f)) || known[f] === true);
  for (const f of candidates)
    if (!accepted.includes(f))
      opts.logger.debug(
        { option: f, node: process.version },
        "this node refuses the worker option; left out",
      );
  return accepted;
}
