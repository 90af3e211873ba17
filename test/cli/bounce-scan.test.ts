/**
 * `qrunner bounce scan` as a real process: `node bin/qrunner ...` over the compiled dist/.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, promises as fsp, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scanBounce } from "../../src/lists/bounces/detect.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURES = path.join(ROOT, "test/fixtures/bounces");
let tmp = "";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function qrunner(args: string[], input?: Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, "bin/qrunner"), ...args], {
      cwd: tmp,
      env: { ...process.env, QRUNNER_CONFIG: path.join(tmp, "no-such-config.yaml") },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

beforeAll(async () => {
  // Other modules of the tree may not type-check while they are being written; tsc still emits, and
  // what this test needs is that the CLI and the detector were compiled from the current sources.
  spawnSync(
    process.execPath,
    [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: ROOT,
      stdio: "ignore",
    },
  );
  for (const f of ["dist/cli/main.js", "dist/cli/bounce-scan.js", "dist/lists/bounces/detect.js"]) {
    expect(existsSync(path.join(ROOT, f)), `${f} built`).toBe(true);
  }
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qrunner-bounce-scan-"));
}, 120_000);

afterAll(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

describe("qrunner bounce scan", () => {
  it("prints the format and an aligned table, and exits 0 for a bounce", async () => {
    const r = await qrunner(["bounce", "scan", path.join(FIXTURES, "sendmail-mixed.eml")]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("format: rfc3464");
    // permanent = hard (the mailbox is gone); a relaying refusal and a delay are soft
    expect(lines[1]).toBe("1 permanent, 2 temporary");
    expect(lines[3]).toMatch(/^ADDRESS\s+KIND\s+REASON\s+STATUS\s+DIAGNOSTIC$/);
    const rows = lines.slice(4);
    expect(rows.map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      ["olivia@example.com", "permanent", "userunknown", "5.1.1"],
      ["peggy@example.com", "temporary", "norelaying", "5.7.1"],
      ["rupert@example.net", "temporary", "delayed", "4.4.1"],
    ]);
    // aligned: every column starts at the same offset on every row
    for (const word of ["KIND", "REASON", "STATUS", "DIAGNOSTIC"]) {
      const col = (lines[3] as string).indexOf(word);
      for (const row of rows) expect(row[col - 1], `${word} column`).toBe(" ");
      for (const row of rows) expect(row[col], `${word} column`).not.toBe(" ");
    }
    expect(rows[2]).toContain("451 4.4.1 reply: read error from mx.example.net.");
  });

  it("prints one JSON object with --json, the same as the library's answer", async () => {
    const file = path.join(FIXTURES, "exim-failed.eml");
    const r = await qrunner(["bounce", "scan", "--json", file]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(await scanBounce(readFileSync(file)));
    expect(JSON.parse(r.stdout)).toMatchObject({
      recognized: true,
      format: "exim",
      permanent: ["henry@example.net"],
      temporary: ["grace@example.net"],
    });
    expect(JSON.parse(r.stdout).details.map((d: { reason: string }) => d.reason)).toEqual([
      "mailboxfull",
      "userunknown",
    ]);
  });

  it("reads stdin for -", async () => {
    const r = await qrunner(
      ["bounce", "scan", "--json", "-"],
      readFileSync(path.join(FIXTURES, "qmail.eml")),
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).permanent).toEqual(["ivan@example.com", "judy@example.net"]);
  });

  it("exits 1 and says why when no bounce is recognized", async () => {
    const plain = path.join(tmp, "hello.eml");
    await fsp.writeFile(
      plain,
      "From: Quentin <quentin@example.com>\nTo: dev@example.org\nSubject: hello\n\nJust saying hello.\n",
    );
    const r = await qrunner(["bounce", "scan", plain]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(
      "format: none\nno bounce recognized: no delivery-status part and no known text pattern\n",
    );

    const ooo = await qrunner(["bounce", "scan", path.join(FIXTURES, "ooo-autoreply.eml")]);
    expect(ooo.code).toBe(1);
    expect(ooo.stdout).toMatch(/no bounce recognized: an automatic reply/);

    const json = await qrunner(["bounce", "scan", "--json", path.join(FIXTURES, "ordinary.eml")]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      recognized: false,
      format: "none",
      permanent: [],
      temporary: [],
    });
  });

  it("names the complainant of a feedback-loop report, and exits 1: a complaint is no bounce", async () => {
    const arf = path.join(tmp, "arf.eml");
    await fsp.writeFile(
      arf,
      [
        "From: fbl@isp.example.net",
        "To: abuse@example.org",
        "Subject: Abuse report",
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"',
        "",
        "--b",
        "Content-Type: text/plain",
        "",
        "A complaint.",
        "--b",
        "Content-Type: message/feedback-report",
        "",
        "Feedback-Type: abuse",
        "User-Agent: Example-FBL/1.0",
        "Version: 1",
        "Original-Rcpt-To: <nina@example.net>",
        "--b",
        "Content-Type: text/rfc822-headers",
        "",
        "From: dev@example.org",
        "To: nina@example.net",
        "Subject: [dev] news",
        "--b--",
        "",
      ].join("\r\n"),
    );
    const r = await qrunner(["bounce", "scan", arf]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/no bounce recognized: a feedback-loop complaint \(abuse\)/);
    expect(r.stdout).toContain("complaint: nina@example.net (abuse)\n");
    const json = await qrunner(["bounce", "scan", "--json", arf]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      recognized: false,
      notBounce: "complaint",
      complaint: { address: "nina@example.net", feedbackType: "abuse" },
    });
  });

  it("exits 1 on junk without a stack trace", async () => {
    const junk = path.join(tmp, "junk.bin");
    let seed = 99;
    await fsp.writeFile(
      junk,
      Buffer.alloc(2 * 1024 * 1024).map(() => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff),
    );
    const r = await qrunner(["bounce", "scan", junk]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^format: none\nno bounce recognized: /);
    expect(r.stderr).toBe("");
  });

  it("exits 66 when the file cannot be read", async () => {
    const missing = await qrunner(["bounce", "scan", path.join(tmp, "missing.eml")]);
    expect(missing.code).toBe(66);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toMatch(/^qrunner: cannot read .*missing\.eml: ENOENT/);

    const dir = await qrunner(["bounce", "scan", tmp]);
    expect(dir.code).toBe(66);
    expect(dir.stderr).toMatch(/EISDIR/);

    if (process.getuid?.() !== 0) {
      const locked = path.join(tmp, "locked.eml");
      await fsp.writeFile(locked, readFileSync(path.join(FIXTURES, "qmail.eml")), { mode: 0o000 });
      const denied = await qrunner(["bounce", "scan", locked]);
      expect(denied.code).toBe(66);
      expect(denied.stderr).toMatch(/EACCES/);
    }
  });

  it("has --help with an example, and a usage error for a missing FILE", async () => {
    const help = await qrunner(["bounce", "scan", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Example:\n  qrunner bounce scan ");
    const usage = await qrunner(["bounce", "scan"]);
    expect(usage.code).toBe(64);
  });
});
