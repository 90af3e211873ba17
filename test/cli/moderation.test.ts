/** `qrunner held|approve|reject|discard` as real processes (build first: npx tsc -p tsconfig.build.json). */
import { spawn } from "node:child_process";
import { existsSync, promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HeldStore } from "../../src/lists/held.js";
import { Switchboard } from "../../src/queue/switchboard.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin/qrunner");

function qrunner(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const RAW = Buffer.from(
  "From: Mallory <mallory@example.com>\r\nTo: dev@example.org\r\nSubject: buy now\r\nMessage-ID: <m1@example.com>\r\n\r\nhello\r\n",
);

let tmp: string;
let cfg: string;
let state: string;
let qfiles: string;
let held: HeldStore;

async function drain(queue: string): Promise<Awaited<ReturnType<Switchboard["dequeue"]>>[]> {
  const sb = await Switchboard.open({ root: qfiles, queue });
  const out = [];
  try {
    for (let e = await sb.dequeue(); e; e = await sb.dequeue()) out.push(e);
  } finally {
    sb.close();
  }
  return out;
}

beforeEach(async () => {
  expect(existsSync(path.join(ROOT, "dist/cli/main.js")), "build first: npx tsc -p tsconfig.build.json").toBe(
    true,
  );
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qrunner-moderation-cli-"));
  await fsp.mkdir(path.join(tmp, "config"));
  await fsp.mkdir(path.join(tmp, "lists"));
  cfg = path.join(tmp, "config", "qrunner.yaml");
  state = path.join(tmp, "var");
  qfiles = path.join(tmp, "qfiles");
  await fsp.writeFile(cfg, "qfiles: ../qfiles\nstate: ../var\nlists: ../lists\n");
  await fsp.writeFile(
    path.join(tmp, "lists", "dev@example.org.yaml"),
    "address: dev@example.org\nowners: [owner@example.org]\nmembers: [alice@example.net]\n",
  );
  held = new HeldStore(state, "dev@example.org");
});

afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe("qrunner held", () => {
  it("lists held posts as a table and as JSON", async () => {
    const id = await held.hold(RAW, {
      sender: "bounce@example.com",
      from: "mallory@example.com",
      subject: "buy now",
      reason: "post from a non-member",
    });
    const r = await qrunner(["held", "dev@example.org", "-C", cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ID\s+HELD \(UTC\)\s+FROM\s+SIZE\s+REASON\s+SUBJECT$/m);
    expect(r.stdout).toMatch(
      new RegExp(
        `^${id}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+mallory@example\\.com\\s+${RAW.length}\\s+post from a non-member\\s+buy now$`,
        "m",
      ),
    );
    const j = await qrunner(["held", "-C", cfg, "--json"]);
    expect(JSON.parse(j.stdout)).toMatchObject([
      { id, list: "dev@example.org", reason: "post from a non-member" },
    ]);
    expect((await qrunner(["held", "nope@example.org", "-C", cfg])).code).toBe(67);
  });
});

describe("qrunner approve / reject / discard", () => {
  it("approve queues the post in incoming, marked approved, and removes it from held", async () => {
    const id = await held.hold(RAW, { sender: "mallory@example.com", reason: "r", received: 1234 });
    const r = await qrunner(["approve", id.toUpperCase(), "-C", cfg]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^approved ${id} \\(dev@example\\.org\\): queued [0-9a-f]{40} in incoming$`, "m"),
    );
    const entries = await drain("incoming");
    expect(entries).toHaveLength(1);
    expect(entries[0]?.message.equals(RAW)).toBe(true);
    expect(entries[0]?.meta).toMatchObject({
      sender: "mallory@example.com",
      recipients: ["dev@example.org"],
      list: "dev@example.org",
      to: "dev@example.org",
      kind: "post",
      received: 1234,
      extra: { approved: true },
    });
    expect(await held.list()).toEqual([]);
    // a second approve of the same id finds nothing
    const again = await qrunner(["approve", id, "-C", cfg]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("no held post with id");
  });

  it("reject queues a notice to the poster in outgoing and removes the post", async () => {
    const id = await held.hold(RAW, {
      sender: "mallory@example.com",
      from: "mallory@example.com",
      subject: "buy now",
      reason: "r",
    });
    const r = await qrunner(["reject", id, "--reason=off topic here", "-C", cfg]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`rejected ${id} (dev@example.org): notice to mallory@example.com queued`);
    const out = await drain("outgoing");
    expect(out).toHaveLength(1);
    expect(out[0]?.meta).toMatchObject({
      sender: "dev-bounces@example.org",
      recipients: ["mallory@example.com"],
      kind: "notice",
    });
    const text = out[0]?.message.toString("utf8") ?? "";
    expect(text).toContain("To: mallory@example.com");
    expect(text).toContain("off topic here");
    expect(text).toContain("In-Reply-To: <m1@example.com>");
    expect(await drain("incoming")).toEqual([]);
    expect(await held.list()).toEqual([]);
  });

  it("reject of a post from the null sender sends no notice", async () => {
    const id = await held.hold(RAW, { sender: "", reason: "r" });
    const r = await qrunner(["reject", id, "-C", cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("no notice");
    expect(await drain("outgoing")).toEqual([]);
  });

  it("reject sends no notice to automatic mail (RFC 3834)", async () => {
    const auto = Buffer.concat([Buffer.from("Auto-Submitted: auto-replied\r\n"), RAW]);
    const id = await held.hold(auto, {
      sender: "mallory@example.com",
      from: "mallory@example.com",
      reason: "r",
    });
    const r = await qrunner(["reject", id, "-C", cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("no notice: Auto-Submitted: auto-replied");
    expect(await drain("outgoing")).toEqual([]);
    expect(await held.list()).toEqual([]);
  });

  it("discard drops the post and queues nothing", async () => {
    const id = await held.hold(RAW, { sender: "mallory@example.com", reason: "r" });
    const r = await qrunner(["discard", id, "-C", cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`discarded ${id}`);
    expect(await held.list()).toEqual([]);
    expect(existsSync(path.join(qfiles, "incoming"))).toBe(false);
  });

  it("exits 1 for ids that are unknown or malformed", async () => {
    for (const id of ["0000000000", "../../etc", "x"]) {
      const r = await qrunner(["discard", id, "-C", cfg]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("no held post with id");
    }
  });

  it("approve exits 67 when the post's list no longer exists, and keeps the post", async () => {
    const gone = new HeldStore(state, "old@example.org");
    const id = await gone.hold(RAW, { sender: "a@example.net", reason: "r" });
    const r = await qrunner(["approve", id, "-C", cfg]);
    expect(r.code).toBe(67);
    expect(r.stderr).toContain(`list old@example.org no longer exists; \`qrunner discard ${id}\``);
    expect(await gone.get(id)).not.toBeNull();
    expect((await qrunner(["discard", id, "-C", cfg])).code).toBe(0);
  });

  it("every command has --help with an example", async () => {
    for (const cmd of ["held", "approve", "reject", "discard"]) {
      const r = await qrunner([cmd, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Example:\\n  qrunner ${cmd}`));
    }
  });
});
