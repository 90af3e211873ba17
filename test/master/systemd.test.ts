/** The systemd units: `systemd-analyze verify` when it is installed, and the instance-name mapping. */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseInstance } from "../../src/cli/start.js";
import { REPO } from "./helpers.js";

const has = (bin: string) => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0;
const UNITS = ["qrunner.service", "qrunner-runner@.service"];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-units-"));
  for (const u of UNITS) await copyFile(path.join(REPO, "config", u), path.join(dir, u));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("systemd units", () => {
  it.skipIf(!has("systemd-analyze")).each(UNITS)("%s passes systemd-analyze verify", (unit) => {
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", path.join(dir, unit)], {
      encoding: "utf8",
    });
    expect(r.stderr.split("\n").filter((l) => l.includes(unit))).toEqual([]);
    expect(r.status).toBe(0);
  });

  it("the master unit stops the master only, lets it stop its workers, and runs unprivileged", async () => {
    const text = await readFile(path.join(REPO, "config/qrunner.service"), "utf8");
    for (const line of [
      "Type=simple",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "KillMode=mixed",
      "Restart=on-failure",
      "User=qrunner",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "PrivateTmp=yes",
      "ProtectHome=yes",
      "UMask=0077",
    ])
      expect(text.split("\n")).toContain(line);
    // a bit over the default master.stop_timeout (30s)
    expect(Number(/^TimeoutStopSec=(\d+)$/m.exec(text)?.[1])).toBeGreaterThan(30);
  });

  it.skipIf(!has("systemd-escape"))(
    "maps an instance name to --runner and --slice as %I unescapes it",
    () => {
      const cases: Array<[string, { runner: string; slice: string }]> = [
        ["outgoing:0/4", { runner: "outgoing", slice: "0/4" }],
        ["incoming:0/1", { runner: "incoming", slice: "0/1" }],
        ["outgoing:1/2:1,3", { runner: "outgoing", slice: "1/2:1,3" }],
      ];
      for (const [instance, want] of cases) {
        const escaped = execFileSync("systemd-escape", [instance], { encoding: "utf8" }).trim();
        const unescaped = execFileSync("systemd-escape", ["--unescape", escaped], {
          encoding: "utf8",
        }).trim();
        expect(parseInstance(unescaped)).toEqual(want);
        // the escaped form as typed, with "-" for "/", is accepted too
        expect(parseInstance(escaped.replace(/\\x2c/g, ","))).toEqual(want);
      }
      expect(parseInstance("outgoing")).toBeNull();
      expect(parseInstance("outgoing:0-")).toBeNull();
    },
  );
});
