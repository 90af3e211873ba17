/** Feeding the posts in (some through `qrunner inject`, the bulk straight into incoming), and what is left queued. */
import { spawn } from "node:child_process";
import { listQueue } from "../queue/inspect.js";
import { Switchboard } from "../queue/switchboard.js";
import { BIN } from "./master.js";
import { post, type DemoSite } from "./site.js";

/** One post through `qrunner inject`, as an MTA pipe would hand it over. */
function injectOne(site: DemoSite, raw: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "inject", "-C", site.configFile, `--to=${site.list}`], {
      stdio: ["pipe", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`qrunner inject exited ${code}: ${err.trim()}`)),
    );
    child.stdin.end(raw);
  });
}

export async function inject(site: DemoSite, opts: { posts: number; inject: number }): Promise<void> {
  // the first posts through the real CLI, four at a time
  for (let i = 0; i < opts.inject; i += 4) {
    await Promise.all(
      Array.from({ length: Math.min(4, opts.inject - i) }, (_, j) => injectOne(site, post(i + j).raw)),
    );
  }
  // the bulk straight into incoming, exactly as inject queues them
  const incoming = await Switchboard.open({ root: site.qfiles, queue: "incoming" });
  try {
    for (let i = opts.inject; i < opts.posts; i += 200) {
      const items = [];
      for (let k = i; k < Math.min(opts.posts, i + 200); k++) {
        const sender = `poster${k % 17}@poster.example`;
        items.push({
          message: post(k).raw,
          meta: { sender, recipients: [site.list], to: site.list, list: site.list, kind: "post" },
        });
      }
      await incoming.enqueueMany(items);
    }
  } finally {
    incoming.close();
  }
}

/** (post, member) pairs still held by a queue: a post in incoming is not fanned out yet. */
export async function pairsIn(site: DemoSite, queues: readonly string[]): Promise<number> {
  let n = 0;
  for (const q of queues) {
    for (const e of await listQueue(site.qfiles, q)) {
      if (!e.meta || e.meta.list !== site.list) continue;
      if (e.meta.kind === "post" && (q === "incoming" || e.meta.shuntedFrom === "incoming"))
        n += site.members.length;
      else if (e.meta.kind === "post") n += e.meta.recipients.length;
    }
  }
  return n;
}
