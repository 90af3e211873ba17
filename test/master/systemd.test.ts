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

  // issue 15, finding 9: `systemd-analyze security` rates the sandboxing; at most 3.0 ("OK") for each unit
  it.skipIf(!has("systemd-analyze")).each(UNITS)(
    "%s scores at most 3.0 in systemd-analyze security",
    (unit) => {
      const r = spawnSync(
        "systemd-analyze",
        ["security", "--offline=true", "--no-pager", path.join(dir, unit)],
        {
          encoding: "utf8",
        },
      );
      const score = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout + r.stderr)?.[1];
      expect(score, r.stdout + r.stderr).toBeDefined();
      expect(Number(score)).toBeLessThanOrEqual(3.0);
    },
  );

  it.each(UNITS)(
    "%s starts node by absolute path, with no capabilities and the sandbox the issue lists",
    async (unit) => {
      const lines = (await readFile(path.join(REPO, "config", unit), "utf8")).split("\n");
      const exec = lines.find((l) => l.startsWith("ExecStart="));
      expect(exec).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/qrunner\/bin\/qrunner start /);
      expect(exec).not.toContain("/usr/bin/env");
      for (const line of [
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
      ])
        expect(lines, unit).toContain(line);
      // V8's JIT needs writable and executable memory: node aborts under MemoryDenyWriteExecute=yes
      expect(lines).not.toContain("MemoryDenyWriteExecute=yes");
      // the password is given by a credential or a root-only environment file, never in the unit
      expect(lines.some((l) => l.startsWith("#LoadCredential=smtp-pass:"))).toBe(true);
      expect(lines.some((l) => /^Environment=.*PASS/i.test(l))).toBe(false);
    },
  );

  it("the master unit keeps its pid file in its own RuntimeDirectory", async () => {
    const lines = (await readFile(path.join(REPO, "config/qrunner.service"), "utf8")).split("\n");
    expect(lines).toContain("RuntimeDirectory=qrunner");
    expect(lines).toContain("RuntimeDirectoryMode=0700");
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
