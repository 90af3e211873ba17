/**
 * A full disk, for real: queue directories on small tmpfs mounts of their own (root only; the test
 * mounts and unmounts them). `inject` exits 75 and leaves nothing behind; with the master running,
 * a full `outgoing` keeps posts in `incoming` and a full `backoff` keeps deliveries in `outgoing`
 * (a runner never finishes an entry before its successor is written); when space returns everything
 * is delivered, once, and nothing is left over.
 */
import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, rm, statfs, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { decodeEntry } from "../../src/queue/entry.js";
import { logLines, message, runCli, waitFor, runOnce } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";

const asRoot = process.getuid?.() === 0;

const t = testScope();

async function mountTmpfs(dir: string, size: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
  t.defer(() => execFileSync("umount", ["-l", dir]));
}

/** Fill a filesystem until `leave` bytes are free; returns the filler's path. */
async function fill(dir: string, leave: number): Promise<string> {
  const st = await statfs(dir);
  const free = st.bavail * st.bsize;
  const file = path.join(dir, "filler");
  await writeFile(file, Buffer.alloc(Math.max(0, free - leave)));
  return file;
}

/** Queue files of a directory by extension, with every complete entry decoded. */
async function entries(
  dir: string,
): Promise<{ qf: number; wip: number; tmp: number; decoded: number; distinct: number }> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out = { qf: 0, wip: 0, tmp: 0, decoded: 0, distinct: 0 };
  // an entry being put back has two files for a moment (its successor .qf, then its .wip goes)
  const ids = new Set<string>();
  for (const n of names) {
    const ext = /\.(qf|wip|tmp)$/.exec(n)?.[1] as "qf" | "wip" | "tmp" | undefined;
    if (!ext) continue;
    out[ext]++;
    if (ext !== "tmp") ids.add(n.replace(/^.*\+/, "").replace(/\.\w+$/, ""));
    if (ext !== "tmp") {
      // a live runner may rename or remove it meanwhile; what is there must decode
      const data = await readFile(path.join(dir, n)).catch(() => null);
      if (data) {
        decodeEntry(n, data);
        out.decoded++;
      }
    }
  }
  out.distinct = ids.size;
  return out;
}

const MEMBERS = ["m0@example.net", "m1@example.net", "m2@example.net", "m3@example.net"];
const LIST = {
  address: "dev@example.org",
  members: MEMBERS,
  extra: "archive: false\nnonmembers: accept\nmax_size: 10MB",
};

describe.runIf(asRoot)("disk full", () => {
  it("inject exits 75 on a full queue filesystem, whatever the size, and leaves nothing; 0 once space returns", async () => {
    const site = await t.site("", [LIST]);
    const incoming = path.join(site.qfiles, "incoming");
    await mountTmpfs(incoming, "256k");
    const filler = await fill(incoming, 20_000);
    for (const size of [30_000, 60_000, 250_000, 2_000_000]) {
      const r = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
        input: message({ body: "x".repeat(size) }),
      });
      expect({ size, code: r.code }).toEqual({ size, code: 75 });
      expect(await readdir(incoming)).toEqual(["filler"]);
    }
    await rm(filler);
    const ok = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
      input: message({ body: "x".repeat(60_000) }),
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect((await entries(incoming)).decoded).toBe(1);
  });

  it("a full outgoing keeps posts in incoming, a full backoff keeps deliveries in outgoing; nothing is lost when space returns", async () => {
    const sink = await t.sink();
    const site = await t.site(
      [
        "runners:",
        "  incoming: { sleep: 300ms }",
        "  outgoing: { sleep: 300ms }",
        "  backoff: { sleep: 300ms }",
        "smtp:",
        `  hosts: [{ host: 127.0.0.1, port: ${sink.port}, connect_timeout: 2s, timeout: 10s }]`,
        "  max_recipients: 1",
        "  probe_max: 1s",
        "backoff: { schedule: [300ms], max_age: 1h, jitter: 0 }",
        "",
      ].join("\n"),
      [LIST],
    );
    const outgoing = path.join(site.qfiles, "outgoing");
    const backoff = path.join(site.qfiles, "backoff");
    await mountTmpfs(outgoing, "1m");
    await mountTmpfs(backoff, "1m");
    const body = "y".repeat(30_000);
    const inject = async (id: string): Promise<void> => {
      const r = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
        input: message({ id, from: "m0@example.net", body }),
      });
      expect(r.code, r.stderr).toBe(0);
    };

    // 1. outgoing is full: each post would fan out into 4 x 30 KB; only 20 KB are free
    const outFiller = await fill(outgoing, 20_000);
    const master = t.spawn(["start", "-C", site.configFile]);
    await waitFor("all workers ready", () => master.stdout().includes('"msg":"all workers ready"'), 30_000);
    const pids = async (): Promise<number[]> => {
      const st = JSON.parse((await runCli(["status", "--json", "-C", site.configFile])).stdout) as {
        workers: { pid: number | null; restarts: number }[];
      };
      expect(st.workers.every((w) => w.restarts === 0)).toBe(true);
      return st.workers.map((w) => w.pid ?? 0).sort();
    };
    const before = await pids();
    for (let i = 0; i < 6; i++) await inject(`<full-out-${i}@x>`);
    const retries = (): number =>
      logLines(master.stdout()).filter((l) => l["msg"] === "cannot pass entry on; will retry").length;
    await waitFor("incoming to meet the full disk", () => retries() >= 6, 30_000);
    let inc = await entries(path.join(site.qfiles, "incoming"));
    expect(inc.distinct).toBe(6);
    const out = await entries(outgoing);
    expect(out.decoded).toBe(0);
    expect(sink.deliveryCount()).toBe(0);

    // space returns: every post fans out and is delivered
    await rm(outFiller);
    await waitFor("24 deliveries", () => sink.deliveryCount() >= 24, 60_000);

    // 2. backoff is full and the host answers 451: the deliveries stay in outgoing
    sink.setFaults({ data: 451 });
    const backFiller = await fill(backoff, 20_000);
    for (let i = 0; i < 3; i++) await inject(`<full-back-${i}@x>`);
    const failures = (): number =>
      logLines(master.stdout()).filter(
        (l) => l["msg"] === "cannot pass entry on; will retry" && l["queue"] === "outgoing",
      ).length;
    await waitFor("outgoing to meet the full backoff", () => failures() >= 12, 30_000);
    inc = await entries(path.join(site.qfiles, "incoming"));
    expect(inc.qf + inc.wip).toBe(0);
    const held = await entries(outgoing);
    expect(held.distinct).toBe(12);
    expect((await entries(backoff)).decoded).toBe(0);

    // space and the host return
    sink.clearFaults();
    await rm(backFiller);
    await waitFor("36 deliveries", () => sink.deliveryCount() >= 36, 60_000);
    await waitFor("the queues to drain", async () => {
      const all = await Promise.all(
        ["incoming", "outgoing", "backoff"].map((q) => entries(path.join(site.qfiles, q))),
      );
      return all.every((e) => e.qf + e.wip === 0);
    });
    expect(await pids()).toEqual(before);
    master.child.kill("SIGTERM");
    expect((await master.exited).code).toBe(0);

    const d = sink.deliveries();
    const want = [...Array(6).keys()]
      .map((i) => `<full-out-${i}@x>`)
      .concat([...Array(3).keys()].map((i) => `<full-back-${i}@x>`));
    for (const id of want) for (const m of MEMBERS) expect(d.get(`${id} ${m}`), `${id} ${m}`).toBe(1);
    expect(sink.deliveryCount()).toBe(36);
    for (const q of ["incoming", "outgoing", "backoff", "shunt", "bad"]) {
      const e = await entries(path.join(site.qfiles, q));
      expect({ q, ...e }).toEqual({ q, qf: 0, wip: 0, tmp: 0, decoded: 0, distinct: 0 });
    }
  });

  // enqueueMany once left the temp files of a fan-out's siblings that did fit behind when one met the
  // full disk, holding space until a recovery at least 10 minutes later.
  it("a fan-out that only partly fits leaves no temporary file behind", async () => {
    const site = await t.site("runners:\n  incoming: { sleep: 60s }\nsmtp: { max_recipients: 1 }\n", [LIST]);
    const outgoing = path.join(site.qfiles, "outgoing");
    await mountTmpfs(outgoing, "512k");
    await fill(outgoing, 75_000);
    const r = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
      input: message({ from: "m0@example.net", body: "z".repeat(30_000) }),
    });
    expect(r.code, r.stderr).toBe(0);
    const once = await runOnce(site, "incoming");
    expect(once.code, once.stderr).toBe(0);
    // the post stays in incoming (nothing lost), and nothing else is left in outgoing
    expect((await entries(path.join(site.qfiles, "incoming"))).qf).toBe(1);
    expect(await entries(outgoing)).toEqual({ qf: 0, wip: 0, tmp: 0, decoded: 0, distinct: 0 });
  });
});
