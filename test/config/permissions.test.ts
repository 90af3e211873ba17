/**
 * Finding 8 of issue 15: `start` and `config check` refuse queue, state and list folders and files that
 * others can write or that belong to another user, naming the path, its mode or owner and the fix.
 */
import { chmod, chown, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { checkPermissions } from "../../src/config/permissions.js";
import { makeSite, requireBuild, runCli, type Site } from "../helpers/site.js";

const DEV = { address: "dev@example.org", members: ["alice@example.net"] };
const asRoot = process.getuid?.() === 0;
let site: Site;

beforeAll(() => requireBuild());
beforeEach(async () => {
  site = await makeSite("", [DEV]);
  // what a running daemon leaves: queue and state folders, 0700
  await mkdir(path.join(site.qfiles, "incoming"), { recursive: true, mode: 0o700 });
  await mkdir(path.join(site.state, "lists"), { recursive: true, mode: 0o700 });
});
afterEach(async () => {
  await site.cleanup();
});

const listFile = () => path.join(site.listsDir, "dev@example.org.yaml");

describe("checkPermissions", () => {
  it("finds nothing on a site made with 0750 folders and 0640 files", async () => {
    expect(await checkPermissions(await loadConfig(site.configFile))).toEqual([]);
  });

  it("names a world-writable queue folder and a group/world-writable list file, with the chmod to run", async () => {
    await chmod(site.qfiles, 0o777);
    await chmod(listFile(), 0o666);
    await chmod(path.join(site.state, "lists"), 0o770);
    const issues = await checkPermissions(await loadConfig(site.configFile));
    expect(issues.map((i) => [i.file, i.line, i.col])).toEqual([
      [site.qfiles, 1, 1],
      [path.join(site.state, "lists"), 1, 1],
      [listFile(), 1, 1],
    ]);
    expect(issues[0]?.message).toBe(
      `this folder is writable by its group and every user (mode 0777); fix: chmod go-w ${site.qfiles} (folders 0750 or 0700, files 0640 or 0600)`,
    );
    expect(issues[1]?.message).toContain("writable by its group (mode 0770)");
    expect(issues[2]?.message).toContain(
      `this file is writable by its group and every user (mode 0666); fix: chmod go-w ${listFile()}`,
    );
  });

  it.skipIf(!asRoot)("names a file of another user, with the chown to run", async () => {
    await chown(listFile(), 65534, 65534);
    const issues = await checkPermissions(await loadConfig(site.configFile), { daemonUid: 0 });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.file).toBe(listFile());
    expect(issues[0]?.message).toMatch(
      /^this file belongs to \S+ \(uid 65534\), not to the daemon's user root \(uid 0\) or root; fix: chown root /,
    );
    // the daemon's user may own its files (root-owned ones, such as /etc/qrunner/lists, are fine too)
    expect(await checkPermissions(await loadConfig(site.configFile), { daemonUid: 65534 })).toEqual([]);
  });
});

describe("config check and start", () => {
  it("config check exits 1 and start exits 78 on a 0777 queue folder, each naming the path and the fix", async () => {
    await chmod(site.qfiles, 0o777);
    const check = await runCli(["config", "check", "-C", site.configFile]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(
      `${site.qfiles}:1:1: this folder is writable by its group and every user (mode 0777)`,
    );
    const start = await runCli(["start", "-C", site.configFile]);
    expect(start.code).toBe(78);
    expect(start.stderr).toContain(`chmod go-w ${site.qfiles}`);
    // no master ran: no pid file, no status
    expect(await site.files("incoming")).toEqual([]);
    await chmod(site.qfiles, 0o750);
    expect((await runCli(["config", "check", "-C", site.configFile])).code).toBe(0);
  });

  it.skipIf(!asRoot)("refuse a list file of another user", async () => {
    await chown(listFile(), 65534, 65534);
    const check = await runCli(["config", "check", "-C", site.configFile]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`${listFile()}:1:1: this file belongs to`);
    expect(check.stderr).toContain("(uid 65534)");
    const start = await runCli(["start", "-C", site.configFile]);
    expect(start.code).toBe(78);
  });

  it("refuse a group-writable config file", async () => {
    await chmod(site.configFile, 0o664);
    await writeFile(site.configFile, "qfiles: ../qfiles\nstate: ../var\nlists: ../lists\n");
    const check = await runCli(["config", "check", "-C", site.configFile]);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`${site.configFile}:1:1: this file is writable by its group (mode 0664)`);
  });
});
