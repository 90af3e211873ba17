/** `qrunner members` as a real process (build first: npm run build). */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { ListStateStore } from "../../src/lists/state.js";
import { runCli } from "../helpers/process.js";
import { testScope } from "../helpers/scope.js";

const t = testScope();
let tmp: string;
let cfg: string;
let state: string;

beforeEach(async () => {
  const site = await t.site("", [
    { address: "dev@example.org", members: ["alice@example.net", "Bob@example.com", "carol@example.net"] },
  ]);
  tmp = site.dir;
  cfg = site.configFile;
  state = site.state;
});

const qrunner = (args: string[], env: Record<string, string> = {}): ReturnType<typeof runCli> =>
  runCli(args, { env });
/** `qrunner members dev@example.org -C CONFIG ARGS` */
const members = (...args: string[]): ReturnType<typeof runCli> =>
  qrunner(["members", "dev@example.org", "-C", cfg, ...args]);

describe("qrunner members", () => {
  it("prints the file members, all enabled, in a table", async () => {
    const r = await members();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ADDRESS\s+STATE\s+SCORE\s+SOURCE$/);
    expect(lines[1]).toMatch(/^alice@example\.net\s+enabled\s+0\s+file$/);
    expect(lines[2]).toMatch(/^Bob@example\.com\s+enabled\s+0\s+file$/);
    expect(lines.at(-1)).toBe("dev@example.org: 3 members, 3 enabled, 0 disabled");
  });

  it("shows runtime state: mail joins and leaves, bounce-disabled members with their score", async () => {
    const at = Date.UTC(2025, 10, 28, 12, 0, 0);
    await new ListStateStore(state, "dev@example.org").update((s) => {
      s.added.push("dave@example.net");
      s.removed.push("carol@example.net");
      s.members["alice@example.net"] = { score: 5.5, lastBounce: at, disabled: { reason: "bounces", at } };
    });
    // QRUNNER_CONFIG instead of -C, and the list by its bare name
    const r = await qrunner(["members", "dev"], { QRUNNER_CONFIG: cfg });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^alice@example\.net\s+disabled: bounces since 2025-11-28\s+5\.5\s+file$/m);
    expect(r.stdout).toMatch(/^dave@example\.net\s+enabled\s+0\s+mail$/m);
    expect(r.stdout).not.toMatch(/^carol/m);
    expect(r.stdout).toContain("dev@example.org: 3 members, 2 enabled, 1 disabled");
    expect(r.stdout).toContain("left by mail (still in the list file): carol@example.net");

    const j = await qrunner(["members", "DEV@Example.org", "--json", "-C", cfg]);
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout) as {
      members: { address: string; source: string; state: string; score: number }[];
    };
    expect(report).toMatchObject({
      list: "dev@example.org",
      counts: { total: 3, enabled: 2, disabled: 1 },
      leftByMail: ["carol@example.net"],
    });
    expect(report.members[0]).toEqual({
      address: "alice@example.net",
      source: "file",
      state: "disabled",
      score: 5.5,
      lastBounce: at,
      disabled: { reason: "bounces", at },
    });
  });

  it("--disable and --enable change a member's state in the state file, never the list file", async () => {
    const listFile = path.join(tmp, "lists", "dev@example.org.yaml");
    const before = await fsp.readFile(listFile, "utf8");
    const d = await members("--disable", "alice@example.net", "--disable", "Bob@example.com");
    expect(d.code).toBe(0);
    expect(d.stdout).toContain("disabled alice@example.net");
    expect(d.stdout).toMatch(/^alice@example\.net\s+disabled: admin since \d{4}-\d\d-\d\d\s+0\s+file$/m);
    let s = await new ListStateStore(state, "dev@example.org").read();
    expect(s.members["Bob@example.com"]?.disabled?.reason).toBe("admin");

    const e = await members("--enable", "alice@example.net", "--json");
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout)).toMatchObject({ counts: { enabled: 2, disabled: 1 } });
    s = await new ListStateStore(state, "dev@example.org").read();
    expect(s.members["alice@example.net"]).toEqual({ score: 0 });
    expect(await fsp.readFile(listFile, "utf8")).toBe(before);
    expect((await fsp.stat(path.join(state, "lists", "dev@example.org", "state.json"))).mode & 0o777).toBe(
      0o600,
    );
  });

  it("exits 1 and changes nothing when an address is no member (hinting at a case mismatch)", async () => {
    const r = await members("--disable", "alice@example.net", "--disable", "bob@example.com");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not a member of dev@example.org: bob@example.com");
    expect(r.stderr).toContain("did you mean Bob@example.com?");
    expect((await new ListStateStore(state, "dev@example.org").read()).members).toEqual({});
  });

  it("exits 64 for --enable and --disable of one address", async () => {
    const r = await members("--disable", "alice@example.net", "--enable", "alice@EXAMPLE.net");
    expect(r.code).toBe(64);
  });

  it("exits 67 for an unknown list, naming the lists there are", async () => {
    const r = await qrunner(["members", "nope@example.org", "-C", cfg]);
    expect(r.code).toBe(67);
    expect(r.stderr).toContain("no such list: nope@example.org (lists: dev@example.org)");
    expect(r.stdout).toBe("");
  });

  it("exits 78 with file:line:col when the config does not validate", async () => {
    await fsp.writeFile(cfg, "state: ../var\nbogus: 1\n");
    const r = await members();
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/qrunner\.yaml:\d+:\d+: /);
  });

  it("has --help with an example", async () => {
    const r = await qrunner(["members", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Example");
    expect(r.stdout).toContain("qrunner members dev@example.org");
  });
});
