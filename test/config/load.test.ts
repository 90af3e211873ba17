import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { inspectConfig, loadConfig, loadConfigSync } from "../../src/config/load.js";
import { configIssues, lines, tempDirEach } from "./helpers.js";

const t = tempDirEach("qrunner-config-");

describe("loadConfig: a valid file", () => {
  it("applies defaults, resolves paths against the file's folder and versions the bytes", async () => {
    const absCa = await t.write("abs-ca.pem", "pem");
    const text = lines(
      "qfiles: q",
      "state: /var/lib/qrunner",
      "lists: lists",
      "log: { level: debug, file: log/qrunner.log }",
      "smtp:",
      "  hosts:",
      "    - { host: relay1, weight: 2, ca: ca.pem }",
      "    - { host: relay2, port: 2525 }",
      `  fallback: [{ host: backup, ca: ${absCa} }]`,
    );
    await t.write("etc/ca.pem", "pem");
    const file = await t.write("etc/qrunner.yaml", text);
    const c = await loadConfig(file);
    const etc = path.join(t.dir, "etc");
    expect(c.file).toBe(file);
    expect(c.version).toBe(
      createHash("sha1")
        .update(await readFile(file))
        .digest("hex"),
    );
    expect(c.qfiles).toBe(path.join(etc, "q"));
    expect(c.state).toBe("/var/lib/qrunner");
    expect(c.lists).toBe(path.join(etc, "lists"));
    expect(c.log).toEqual({ level: "debug", file: path.join(etc, "log/qrunner.log") });
    expect(c.smtp.hosts[0]).toMatchObject({
      host: "relay1",
      port: 25,
      weight: 2,
      ca: path.join(etc, "ca.pem"),
    });
    expect(c.smtp.hosts[1]).toMatchObject({
      host: "relay2",
      port: 2525,
      weight: 1,
      starttls: "opportunistic",
    });
    expect(c.smtp.fallback[0]?.ca).toBe(absCa);
    // defaults, durations parsed to ms
    expect(c.runners.outgoing.instances).toBe("auto");
    expect(c.runners.archive).toMatchObject({ nice: 10, sleep: 10_000 });
    expect(c.backoff.schedule).toEqual([60_000, 300_000, 900_000, 3_600_000, 14_400_000]);
    expect(c.backoff.max_age).toBe(5 * 86_400_000);
    expect(c.smtp.probe_max).toBe(30_000);
    expect(loadConfigSync(file)).toEqual(c);
  });

  it("an empty file is every default, with the paths of the contract", async () => {
    const file = await t.write("config/qrunner.yaml", "# nothing yet\n");
    const c = await loadConfig(file);
    expect(c.qfiles).toBe(path.join(t.dir, "qfiles"));
    expect(c.state).toBe(path.join(t.dir, "var"));
    expect(c.lists).toBe(path.join(t.dir, "lists"));
    expect(c.smtp.hosts).toMatchObject([{ host: "127.0.0.1", port: 25, weight: 1 }]);
    expect(c.log).toEqual({ level: "info" });
  });
});

describe("loadConfig: errors at the node at fault", () => {
  it("reports a wrong type at the value", async () => {
    const file = await t.write(
      "q.yaml",
      lines("qfiles: q", "smtp:", "  hosts:", "    - host: relay", '      port: "25x"'),
    );
    expect(await configIssues(file)).toEqual([
      { file, line: 5, col: 13, message: 'smtp.hosts[0].port: expected a number, got "25x"' },
    ]);
  });

  it("reports an unknown key at the key, with the nearest known one", async () => {
    const file = await t.write(
      "q.yaml",
      lines("runners:", "  incoming: { instances: 2, slep: 5s }", "mastr: {}"),
    );
    expect(await configIssues(file)).toEqual([
      { file, line: 2, col: 29, message: 'unknown key "slep" in runners.incoming (did you mean "sleep"?)' },
      { file, line: 3, col: 1, message: 'unknown key "mastr" (did you mean "master"?)' },
    ]);
  });

  it("reports a bad duration and a bad size-like value at the value", async () => {
    const file = await t.write("q.yaml", lines("backoff:", "  schedule: [1m, 5 minutes]", "  max_age: true"));
    expect(await configIssues(file)).toEqual([
      {
        file,
        line: 2,
        col: 18,
        message: 'backoff.schedule[1]: not a duration: "5 minutes" (use e.g. 30s, 5m, 1h, 5d)',
      },
      {
        file,
        line: 3,
        col: 12,
        message: "backoff.max_age: expected a duration such as 30s, 5m, 1h, 5d, got true",
      },
    ]);
  });

  it("reports a missing key at its parent mapping", async () => {
    const file = await t.write("q.yaml", lines("smtp:", "  hosts:", "    - port: 26", "      weight: 1"));
    expect(await configIssues(file)).toEqual([
      { file, line: 3, col: 7, message: 'smtp.hosts[0]: missing required key "host"' },
    ]);
  });

  it("reports an empty value at its key", async () => {
    const file = await t.write("q.yaml", lines("qfiles: q", "log:"));
    expect(await configIssues(file)).toEqual([
      { file, line: 2, col: 1, message: "log: expected a mapping (key: value), got an empty value" },
    ]);
  });

  it("reports YAML syntax errors and duplicate keys where the parser found them", async () => {
    const dup = await t.write("dup.yaml", lines("qfiles: a", "state: b", "qfiles: c"));
    expect(await configIssues(dup)).toEqual([
      { file: dup, line: 3, col: 1, message: "YAML: Map keys must be unique" },
    ]);
    const bad = await t.write("bad.yaml", lines("smtp:", "  hosts:", "    - host: a", "   port: 25"));
    const issues = await configIssues(bad);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toMatchObject({ file: bad, line: 4 });
    expect(issues[0]?.message).toMatch(/^YAML: /);
  });

  it("reports every issue at once, sorted by position", async () => {
    const file = await t.write(
      "q.yaml",
      lines("qfiles: 1", "log: { level: loud }", "runners: { outgoing: { instances: many } }"),
    );
    const issues = await configIssues(file);
    expect(issues.map((i) => `${i.line}:${i.col}`)).toEqual(["1:9", "2:15", "3:35"]);
    expect(issues[1]?.message).toBe(
      'log.level: expected one of trace, debug, info, warn, error, fatal, silent; got "loud"',
    );
    expect(issues[2]?.message).toBe('runners.outgoing.instances: expected "auto" or a number, got "many"');
  });

  it("reports a missing file at line 1 col 1, and the ConfigError message reads file:line:col", async () => {
    const file = path.join(t.dir, "nope.yaml");
    const issues = await configIssues(file);
    expect(issues).toEqual([
      { file, line: 1, col: 1, message: expect.stringContaining("does not exist") as string },
    ]);
    expect(() => loadConfigSync(file)).toThrow(`${file}:1:1: the config file does not exist`);
    const dir = await configIssues(t.dir);
    expect(dir[0]?.message).toMatch(/is a directory/);
  });
});

describe("loadConfig: checks across keys", () => {
  it("rejects two hosts with one identity, and an unreadable CA file", async () => {
    const file = await t.write(
      "q.yaml",
      lines(
        "smtp:",
        "  hosts:",
        "    - { host: relay, port: 25 }",
        "    - { host: relay }",
        "    - { host: relay, name: second, ca: missing.pem }",
        "  fallback:",
        "    - { host: other, name: second }",
      ),
    );
    const issues = await configIssues(file);
    expect(issues).toEqual([
      {
        file,
        line: 4,
        col: 15,
        message:
          'smtp.hosts[1]: host "relay:25" is already defined at smtp.hosts[0] (line 3:7); give one of them a distinct `name`',
      },
      {
        file,
        line: 5,
        col: 40,
        message: `smtp.hosts[2].ca: CA file ${path.join(t.dir, "missing.pem")} does not exist`,
      },
      {
        file,
        line: 7,
        col: 28,
        message:
          'smtp.fallback[0]: host "second" is already defined at smtp.hosts[2] (line 5:7); give each host its own name',
      },
    ]);
  });

  it("rejects a zero weight and a malformed listen address", async () => {
    const file = await t.write(
      "q.yaml",
      lines(
        "smtp: { hosts: [{ host: a, weight: 0 }] }",
        "metrics: { listen: 9100 }",
        "intake: { lmtp: 'localhost:2424' }",
      ),
    );
    const issues = await configIssues(file);
    expect(issues.map((i) => [i.line, i.col, i.message])).toEqual([
      [1, 36, "smtp.hosts[0].weight: must be greater than 0, got 0"],
      [2, 20, "metrics.listen: expected a string, got 9100"],
    ]);
    const file2 = await t.write("q2.yaml", lines("metrics: { listen: 'localhost' }"));
    expect((await configIssues(file2)).map((i) => i.message)).toEqual([
      'metrics.listen: expected host:port (e.g. 127.0.0.1:9100), got "localhost"',
    ]);
  });

  it("takes intake.lmtp as host:port, unix:/path, or a map with the socket's mode, owner, group and limits", async () => {
    const load = async (v: string): Promise<unknown> =>
      (await loadConfig(await t.write("l.yaml", lines(`intake: { lmtp: ${v} }`)))).intake.lmtp;
    expect(await load("'127.0.0.1:8024'")).toEqual({ listen: "127.0.0.1:8024" });
    expect(await load('"unix:/run/qrunner/lmtp"')).toEqual({ listen: "unix:/run/qrunner/lmtp" });
    expect(
      await load(
        '{ listen: "unix:/run/qrunner/lmtp", mode: "0660", owner: qrunner, group: postfix, max_session: 5m, max_transactions: 100, max_buffered: 64MiB }',
      ),
    ).toEqual({
      listen: "unix:/run/qrunner/lmtp",
      mode: 0o660,
      owner: "qrunner",
      group: "postfix",
      max_session: 300_000,
      max_transactions: 100,
      max_buffered: 64 * 1024 * 1024,
    });
    const bad = async (v: string): Promise<string[]> =>
      (await configIssues(await t.write("b.yaml", lines(`intake: { lmtp: ${v} }`)))).map((i) => i.message);
    expect(await bad('"unix:run/lmtp"')).toEqual([
      'intake.lmtp: expected unix:/absolute/path, got "unix:run/lmtp"',
    ]);
    expect(await bad('{ listen: "localhost" }')).toEqual([
      'intake.lmtp.listen: expected host:port (e.g. 127.0.0.1:9100) or unix:/path, got "localhost"',
    ]);
    expect((await bad('{ listen: "unix:/x", mode: 660 }')).join()).toMatch(/intake\.lmtp/);
  });

  it("still finds the lists folder when other keys are invalid", async () => {
    const file = await t.write("q.yaml", lines("qfiles: 3", "lists: here"));
    const r = await inspectConfig(file);
    expect(r.config).toBeUndefined();
    expect(r.listsDir).toBe(path.join(t.dir, "here"));
  });
});
