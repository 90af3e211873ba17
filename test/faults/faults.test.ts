/**
 * The fault suite, bounded for CI: one cycle of every fault (worker kills, a master kill and restart,
 * a host refusing, answering 421 and 451, dropping DATA, answering slowly, a weight edit, an invalid
 * edit, then all together) over about 800 deliveries. The driver (run.js) runs the real daemon and
 * prints its figures; `npm run faults -- --scale=N` runs longer ones.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

interface Figures {
  messages: number;
  kills: number;
  masterKills: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  duplicateMessages: number;
  corrupted: number;
  crashes: number;
  stalls: number;
  wip: number;
  tmpUnexplained: number;
  pending: number;
  bad: number;
  shuntedWithoutReason: number;
  malformedTried: number;
  malformedRefused65: number;
  rejectedEdits: number;
  failures: string[];
}

function runDriver(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO, "test/faults/run.js"), ...args], { cwd: REPO });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("fault suite (bounded)", () => {
  it("loses nothing through worker and master kills, host faults and config edits", async () => {
    if (!existsSync(path.join(REPO, "dist/cli/main.js")))
      throw new Error("dist/ is missing: run `npm run build` first");
    const r = await runDriver(["--scale=1", "--json"]);
    const line = r.stdout.trim().split("\n").at(-1) ?? "";
    expect(line.startsWith("{"), r.stderr).toBe(true);
    const f = JSON.parse(line) as Figures;
    expect(f.failures, r.stderr).toEqual([]);
    expect(r.code, r.stderr).toBe(0);
    expect(f.messages).toBeGreaterThanOrEqual(60);
    expect(f.delivered).toBe(f.expected);
    expect(f.lost).toBe(0);
    expect(f.corrupted).toBe(0);
    expect(f.kills).toBeGreaterThan(10);
    expect(f.masterKills).toBe(1);
    expect(f.duplicateMessages).toBeLessThanOrEqual(f.kills * 8);
    expect({ wip: f.wip, tmp: f.tmpUnexplained, pending: f.pending, bad: f.bad }).toEqual({
      wip: 0,
      tmp: 0,
      pending: 0,
      bad: 0,
    });
    expect(f.shuntedWithoutReason).toBe(0);
    expect({ crashes: f.crashes, stalls: f.stalls }).toEqual({ crashes: 0, stalls: 0 });
    expect(f.malformedRefused65).toBe(f.malformedTried);
    expect(f.rejectedEdits).toBeGreaterThan(0);
  }, 180_000);
});
