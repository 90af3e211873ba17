/** Finding 3 of issue 15: an SMTP password is sent only over TLS, or with an explicit, warned test switch. */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { makeSite, requireBuild, runCli } from "../helpers/site.js";
import { configIssues, lines, tempDirEach } from "./helpers.js";

const t = tempDirEach("qrunner-config-");

const AUTH = "auth: { user: u, pass_env: P }";

describe("auth only under TLS", () => {
  it("refuses auth with the default (opportunistic) STARTTLS or none, on hosts and fallbacks, at the auth key", async () => {
    const text = [
      "smtp:",
      "  hosts:",
      `    - { host: a, ${AUTH} }`,
      `    - { host: b, starttls: never, ${AUTH} }`,
      "  fallback:",
      `    - { host: c, starttls: opportunistic, ${AUTH} }`,
    ];
    const file = await t.write("q.yaml", lines(...text));
    const issues = await configIssues(file);
    // at the auth mapping's value
    const at = (line: number): [number, number] => [line, (text[line - 1] ?? "").indexOf("{ user") + 1];
    expect(issues.map((i) => [i.line, i.col])).toEqual([at(3), at(4), at(6)]);
    for (const i of issues) {
      expect(i.message).toMatch(/^smtp\.(hosts|fallback)\[\d\]\.auth: a password is sent only over TLS/);
      expect(i.message).toContain("`secure: true`");
      expect(i.message).toContain("`starttls: require`");
    }
    expect(issues[1]?.message).toContain("starttls: never");
    // the ConfigError reads file:line:col: message, as every config error does
    const err = await loadConfig(file).catch((e: unknown) => e);
    expect(String((err as Error).message)).toContain(`${file}:3:${at(3)[1]}: smtp.hosts[0].auth:`);
  });

  it("accepts auth with secure: true, with starttls: require, and with allow_plaintext_auth: true", async () => {
    const file = await t.write(
      "q.yaml",
      lines(
        "smtp:",
        "  hosts:",
        `    - { host: a, port: 465, secure: true, ${AUTH} }`,
        `    - { host: b, starttls: require, ${AUTH} }`,
        `    - { host: c, allow_plaintext_auth: true, ${AUTH} }`,
        "    - { host: d }",
      ),
    );
    const c = await loadConfig(file);
    expect(c.smtp.hosts.map((h) => h.allow_plaintext_auth)).toEqual([false, false, true, false]);
  });
});

describe("auth only under TLS, from the command line", () => {
  it("config check exits 1 and start exits 78, both naming TLS and the key to set", async () => {
    requireBuild();
    const site = await makeSite(
      "smtp: { hosts: [{ host: 127.0.0.1, port: 2525, auth: { user: u, pass_env: P } }] }\n",
    );
    try {
      const check = await runCli(["config", "check", "-C", site.configFile]);
      expect(check.code).toBe(1);
      expect(check.stdout + check.stderr).toMatch(
        new RegExp(
          `${site.configFile}:\\d+:\\d+: smtp\\.hosts\\[0\\]\\.auth: a password is sent only over TLS`,
        ),
      );
      const start = await runCli(["start", "-C", site.configFile], { env: { P: "x" } });
      expect(start.code).toBe(78);
      expect(start.stderr).toContain("`starttls: require`");
      expect(await site.files("incoming")).toEqual([]);
    } finally {
      await site.cleanup();
    }
  });
});
