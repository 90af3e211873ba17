import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { dedupe } from "../../src/lists/list-validation.js";
import { loadAll, loadLists, loadListsSync } from "../../src/lists/load.js";
import type { ConfigIssue } from "../../src/util/errors.js";
import { issuesOf, lines, tempDirEach } from "../config/helpers.js";

const t = tempDirEach("qrunner-config-");
/** Write lists/NAME, one line an argument; returns its path. */
const writeList = (name: string, ...ls: string[]): Promise<string> => t.write(`lists/${name}`, lines(...ls));
let dir: string;
beforeEach(() => {
  dir = path.join(t.dir, "lists");
});

const at = (i: ConfigIssue): string => `${path.relative(t.dir, i.file)}:${i.line}:${i.col}: ${i.message}`;

describe("loadLists", () => {
  it("loads a list with defaults, its members file merged and de-duplicated on the domain only", async () => {
    const file = await writeList(
      "Dev@Example.org.yaml",
      "address: Dev@Example.org",
      "owners: [owner@example.org]",
      "members: [alice@example.net, Bob@Example.com]",
      "members_file: members/dev.txt",
      'subject_prefix: "[dev] "',
      "max_size: 2MB",
      "bounce: { threshold: 3 }",
    );
    await writeList(
      "members/dev.txt",
      "# the dev list",
      "",
      "carol@example.net",
      "  bob@EXAMPLE.COM   # same as Bob@Example.com? no: local part differs",
      "Bob@example.COM",
      "alice@example.net",
      "dave@example.org\r",
    );
    const lists = await loadLists(dir);
    expect([...lists.keys()]).toEqual(["dev@example.org"]);
    const dev = lists.get("dev@example.org");
    expect(dev).toMatchObject({
      address: "Dev@Example.org",
      name: "dev",
      domain: "example.org",
      file,
      members_file: path.join(dir, "members/dev.txt"),
      nonmembers: "hold",
      max_size: 2_000_000,
      archive: true,
      hold_expires: 14 * 86_400_000,
      bounce: { threshold: 3, stale_after: 7 * 86_400_000, temporary_weight: 0 },
    });
    // local parts keep their case (RFC 5321); domains compare case-insensitively
    expect(dev?.allMembers).toEqual([
      "alice@example.net",
      "Bob@Example.com",
      "carol@example.net",
      "bob@EXAMPLE.COM",
      "dave@example.org",
    ]);
    expect(loadListsSync(dir)).toEqual(lists);
  });

  it("a missing folder is no lists; hidden files and other files are ignored", async () => {
    expect((await loadLists(dir)).size).toBe(0);
    await t.write("lists/.dev@example.org.yaml.swp", "junk");
    await t.write("lists/README", "junk");
    expect((await loadLists(dir)).size).toBe(0);
  });

  it("reports a bad address in the list file and in the members file at their lines", async () => {
    await writeList(
      "dev@example.org.yaml",
      "address: dev@example.org",
      "owners:",
      "  - owner@example.org",
      "  - not an address",
      "members_file: dev.members",
    );
    await writeList(
      "dev.members",
      "a@example.net",
      "",
      "# comment",
      "Alice <alice@example.net>",
      "b@example.net",
      "c@@example.net",
    );
    const issues = await issuesOf(loadLists(dir));
    expect(issues.map(at)).toEqual([
      'lists/dev.members:4:1: not a plain mail address (local@domain): "Alice <alice@example.net>"',
      'lists/dev.members:6:1: not a plain mail address (local@domain): "c@@example.net"',
      'lists/dev@example.org.yaml:4:5: owners[1]: not a plain mail address (local@domain): "not an address"',
    ]);
  });

  it("reports a file name that is not the list address, and an unreadable members file", async () => {
    await writeList(
      "dev@example.org.yaml",
      "owners: [o@example.org]",
      "address: devel@example.org",
      "members_file: nope",
    );
    const issues = await issuesOf(loadLists(dir));
    expect(issues.map(at)).toEqual([
      "lists/dev@example.org.yaml:2:10: list address devel@example.org does not match the file name dev@example.org.yaml: rename the file to devel@example.org.yaml or fix the address",
      `lists/dev@example.org.yaml:3:15: members_file: members file ${path.join(dir, "nope")} does not exist`,
    ]);
  });

  it("rejects a list defined twice, and a list named like another list's own addresses", async () => {
    await writeList("dev@example.org.yaml", "address: dev@example.org", "owners: [o@example.org]");
    await writeList(
      "DEV@example.org.yaml",
      "# same list, other case",
      "address: DEV@example.org",
      "owners: [o@example.org]",
    );
    await writeList(
      "dev-request@example.org.yaml",
      "address: dev-request@example.org",
      "owners: [o@example.org]",
    );
    await writeList(
      "dev-bounces+x=y.org@example.org.yaml",
      "address: dev-bounces+x=y.org@example.org",
      "owners: [o@example.org]",
    );
    await writeList(
      "dev-request@example.net.yaml",
      "address: dev-request@example.net",
      "owners: [o@example.org]",
    );
    const issues = await issuesOf(loadLists(dir));
    expect(issues.map(at)).toEqual([
      // a VERP-shaped address is no list address at all ('+' and '=' are refused), and it is taken
      `lists/dev-bounces+x=y.org@example.org.yaml:1:10: address: expected a list address (letters, digits, '.', '_' and '-' before the @), got "dev-bounces+x=y.org@example.org"`,
      "lists/dev-bounces+x=y.org@example.org.yaml:1:10: list address dev-bounces+x=y.org@example.org is taken: it is the bounces address of list DEV@example.org",
      "lists/dev-request@example.org.yaml:1:10: list address dev-request@example.org is taken: it is the request address of list DEV@example.org",
      `lists/dev@example.org.yaml:1:10: list dev@example.org is already defined in ${path.join(dir, "DEV@example.org.yaml")}`,
    ]);
  });

  it("reports schema issues of every list, a YAML error, a misnamed .yml file", async () => {
    await writeList(
      "a@example.org.yaml",
      "address: a@example.org",
      "owners: []",
      "nonmembers: maybe",
      "max_size: 1XB",
    );
    await writeList("b@example.org.yaml", "address: b@example.org", "owners: [o@example.org", "x: 1");
    await writeList("c@example.org.yaml", "address: c@example.org", "ownrs: [o@example.org]");
    const issues = await issuesOf(loadLists(dir));
    expect(issues.map(at).filter((s) => !s.includes("YAML"))).toEqual([
      "lists/a@example.org.yaml:2:9: owners: needs at least 1 item, got 0",
      'lists/a@example.org.yaml:3:13: nonmembers: expected one of accept, hold, reject, discard; got "maybe"',
      'lists/a@example.org.yaml:4:11: max_size: not a size: "1XB" (use e.g. 500KB, 1MB, 10MiB)',
      'lists/c@example.org.yaml:1:1: missing required key "owners"',
      'lists/c@example.org.yaml:2:1: unknown key "ownrs" (did you mean "owners"?)',
    ]);
    expect(issues.some((i) => i.file.endsWith("b@example.org.yaml") && i.message.startsWith("YAML: "))).toBe(
      true,
    );

    await writeList("d@example.org.yml", "address: d@example.org", "owners: [o@example.org]");
    const yml = await issuesOf(loadLists(dir));
    expect(yml.map(at)).toEqual([
      "lists/d@example.org.yml:1:1: list files end in .yaml: rename it to d@example.org.yaml, or it is ignored",
    ]);
  });
});

describe("loadAll", () => {
  it("returns config and lists together", async () => {
    const cfg = await t.write("etc/qrunner.yaml", lines("lists: ../lists"));
    await writeList("dev@example.org.yaml", "address: dev@example.org", "owners: [o@example.org]");
    const { config, lists } = await loadAll(cfg);
    expect(config.lists).toBe(dir);
    expect([...lists.keys()]).toEqual(["dev@example.org"]);
  });

  it("reports the issues of the config and of the lists in one error", async () => {
    const cfg = await t.write("etc/qrunner.yaml", lines("lists: ../lists", "qfiles: 1"));
    await writeList("dev@example.org.yaml", "address: dev@example.org");
    const issues = await issuesOf(loadAll(cfg));
    expect(issues.map(at)).toEqual([
      "etc/qrunner.yaml:2:9: qfiles: expected a string, got 1",
      'lists/dev@example.org.yaml:1:1: missing required key "owners"',
    ]);
  });
});

describe("dedupe", () => {
  it("keeps the first spelling, folding the domain's case only", () => {
    expect(dedupe(["a@X.org", "a@x.ORG", "A@x.org"])).toEqual(["a@X.org", "A@x.org"]);
  });
});
