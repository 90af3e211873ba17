// LazyFS for the power-loss test: a FUSE file system that keeps every written byte in its own cache
// until it is fsynced and drops every unsynced byte on command (../shared/tools/lazyfs, its README).
// Mount it, cut the power (`lazyfs::clear-cache` through its fifo), unmount it.
import { spawn, spawnSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export const DEFAULT_LAZYFS = "/tmp/qrunner-lazyfs/lazyfs/build/lazyfs";

/** The LazyFS binary: --lazyfs, then $QRUNNER_LAZYFS, then where build.sh puts it. */
export function lazyfsBinary(explicit) {
  return explicit || process.env.QRUNNER_LAZYFS || DEFAULT_LAZYFS;
}

/** Why LazyFS cannot run here, or null when it can. */
export function lazyfsUnavailable(bin) {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root (mounting FUSE with allow_other needs root)";
  if (!existsSync("/dev/fuse")) return "no /dev/fuse";
  if (spawnSync("fusermount3", ["-V"]).error) return "no fusermount3 (apt-get install fuse3)";
  if (!existsSync(bin))
    return `no LazyFS binary at ${bin} (build it with \`bash ../shared/tools/lazyfs/build.sh\` and set QRUNNER_LAZYFS)`;
  return null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mounted = (mnt) =>
  readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .some((l) => l.split(" ")[1] === mnt);

/**
 * Mount LazyFS at `<base>/mnt` over `<base>/disk`. Returns the mount point, clearCache() (the power
 * loss: every unsynced byte dropped) and unmount() (safe to call twice).
 */
export async function mountLazyfs(bin, base, { cacheSize = "512mb" } = {}) {
  const disk = path.join(base, "disk");
  const mnt = path.join(base, "mnt");
  mkdirSync(disk, { recursive: true });
  mkdirSync(mnt, { recursive: true });
  const fifo = path.join(base, "faults.fifo");
  const doneFifo = path.join(base, "faults-done.fifo");
  const configPath = path.join(base, "lazyfs.toml");
  writeFileSync(
    configPath,
    [
      "[faults]",
      `fifo_path="${fifo}"`,
      `fifo_path_completed="${doneFifo}"`,
      "[cache]",
      "apply_eviction=false",
      "[cache.simple]",
      `custom_size="${cacheSize}"`,
      "blocks_per_page=1",
      "[filesystem]",
      "log_all_operations=false",
      'logfile=""',
      "",
    ].join("\n"),
  );
  for (const f of [fifo, doneFifo])
    if (spawnSync("mkfifo", ["-m", "600", f]).status !== 0) throw new Error(`cannot mkfifo ${f}`);
  const logFile = path.join(base, "lazyfs.log");
  const logFd = openSync(logFile, "a");
  const child = spawn(
    bin,
    [
      mnt,
      // relative, with cwd = base: LazyFS drops a --config-path whose value contains "-o" (any
      // case; it takes it for a FUSE option) and falls back to config/default.toml, and a mkdtemp
      // base such as /tmp/qrunner-powerloss-o91lPk does
      "--config-path",
      path.basename(configPath),
      "-o",
      "allow_other",
      "-o",
      "modules=subdir",
      "-o",
      `subdir=${disk}`,
      "-f",
    ],
    { stdio: ["ignore", logFd, logFd], cwd: base },
  );
  let exited = null;
  const gone = new Promise((resolve) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );
  const until = Date.now() + 60_000;
  while (!mounted(mnt)) {
    if (exited || Date.now() > until) {
      child.kill("SIGKILL");
      throw new Error(`LazyFS did not mount ${mnt}: ${readFileSync(logFile, "utf8").slice(-2000)}`);
    }
    await sleep(100);
  }
  // LazyFS opens the completion fifo for writing once, at start, and writes a line per command done:
  // one reader for the mount's lifetime
  const doneLines = [];
  let wake = null;
  const doneStream = createReadStream(doneFifo, { encoding: "utf8" });
  let pending = "";
  doneStream.on("data", (d) => {
    pending += d;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    doneLines.push(...lines.filter(Boolean));
    wake?.();
  });
  doneStream.on("error", () => undefined);
  let unmounted = false;
  return {
    mnt,
    pid: child.pid,
    logFile,
    /** Drop every unsynced byte (call once every process writing there is dead). */
    async clearCache() {
      doneLines.length = 0;
      writeFileSync(fifo, "lazyfs::clear-cache\n");
      const until = Date.now() + 60_000;
      while (!doneLines.some((l) => l.includes("finished::clear-cache"))) {
        if (Date.now() > until || exited)
          throw new Error(
            `LazyFS did not report clear-cache done: ${readFileSync(logFile, "utf8").slice(-1000)}`,
          );
        await new Promise((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
    },
    async unmount() {
      if (unmounted) return;
      unmounted = true;
      if (mounted(mnt) && spawnSync("fusermount3", ["-u", mnt]).status !== 0)
        spawnSync("fusermount3", ["-u", "-z", mnt]);
      doneStream.destroy();
      if (!exited) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await gone;
        clearTimeout(t);
      }
    },
  };
}
