/**
 * Workers the master starts take its validated settings over IPC (no yaml, no zod in the worker) and
 * take the master's next settings as a reload; a worker started by hand reads the config file and
 * rereads it on SIGHUP. Real master, real workers, real signals.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { readStatusFile, waitAllReady } from "../master/helpers.js";
import { logLines, waitFor, type Running } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";

const t = testScope();

const DEV = { address: "dev@example.org", members: ["bob@example.com"], extra: "archive: false" };
const BODY = "smtp:\n  hosts:\n    - { host: 127.0.0.1, port: 2525 }\nmaster: { stop_timeout: 10s }\n";
const version = (file: string) => createHash("sha1").update(readFileSync(file)).digest("hex");
const lines = (r: Running, msg: string) => logLines(r.stdout()).filter((l) => l["msg"] === msg);

describe("worker settings", () => {
  it("come from the master over IPC, survive a rejected edit, and follow an accepted one", async () => {
    const site = await t.site(BODY, [DEV]);
    const master = t.spawn(["start", "-C", site.configFile]);
    const st = await waitAllReady(site.state, 6, 30_000);
    await waitFor("6 ready lines", () => lines(master, "worker ready").length === 6);
    for (const l of lines(master, "worker ready")) expect(l["settings"]).toBe("master");
    for (const w of st.workers) {
      const argv = readFileSync(`/proc/${w.pid}/cmdline`, "utf8").split("\0");
      expect(argv).toContain("--max-semi-space-size=1");
      expect(argv).toContain(`--runner=${w.runner}`);
    }

    // an edit the master rejects; a worker restarted meanwhile runs with the settings in force
    // (reading the file itself, it would find it invalid and stop with exit 78)
    const good = version(site.configFile);
    await site.writeConfig(BODY + "runners: { command: { sleep: nonsense } }\n");
    await waitFor("the rejected edit", async () => (await readStatusFile(site.state))?.rejectedEdit != null);
    const victim = st.workers.find((w) => w.runner === "command")!;
    process.kill(victim.pid!, "SIGKILL");
    await waitFor("the command worker back", async () => {
      const w = (await readStatusFile(site.state))?.workers.find((x) => x.runner === "command");
      return w?.state === "ready" && w.pid !== victim.pid;
    });
    const again = lines(master, "worker ready").filter((l) => l["runner"] === "command");
    expect(again.map((l) => l["settings"])).toEqual(["master", "master"]);

    // an accepted edit reaches every worker as settings from the master
    await site.writeConfig(BODY + "runners: { command: { sleep: 3s } }\n");
    const next = version(site.configFile);
    expect(next).not.toBe(good);
    await waitFor(
      "6 workers reloaded",
      () =>
        lines(master, "config reloaded").filter((l) => l["runner"] !== undefined && l["version"] === next)
          .length === 6,
    );
    await waitFor("status.json on the new version, every worker ready", async () => {
      const after = await readStatusFile(site.state);
      return after?.config.version === next && after.workers.every((w) => w.state === "ready");
    });
    master.child.kill("SIGTERM");
    expect((await master.exited).code).toBe(0);
  });

  it("come from the config file for a worker started by hand, and SIGHUP rereads it", async () => {
    const site = await t.site(BODY, [DEV]);
    const w = t.spawn(["start", "--runner=archive", "--slice=0/1", "-C", site.configFile]);
    await waitFor("ready", () => lines(w, "worker ready").length === 1);
    expect(lines(w, "worker ready")[0]?.["settings"]).toBe(site.configFile);

    await site.writeConfig(BODY + "runners: { archive: { sleep: 3s } }\n");
    const next = version(site.configFile);
    w.child.kill("SIGHUP");
    await waitFor("reloaded", () => lines(w, "config reloaded").some((l) => l["version"] === next));
    await site.writeConfig(BODY + "runners: { archive: { sleep: nonsense } }\n");
    w.child.kill("SIGHUP");
    await waitFor("rejected", () =>
      logLines(w.stdout()).some((l) => String(l["msg"]).startsWith("config edit rejected")),
    );
    w.child.kill("SIGTERM");
    expect((await w.exited).code).toBe(0);
  });
});
