/** The `web:` section: defaults (no console, no operators), and its mistakes reported at their line. */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { configIssues, lines, tempDirEach } from "./helpers.js";

const t = tempDirEach("qrunner-config-");

const HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

describe("web config", () => {
  it("is off by default, with no operators", async () => {
    const c = await loadConfig(await t.write("q.yaml", lines("qfiles: q")));
    expect(c.web).toEqual({ operators: [] });
  });

  it("reads listen and operators", async () => {
    const c = await loadConfig(
      await t.write(
        "q.yaml",
        lines(
          "web:",
          "  listen: 127.0.0.1:8025",
          "  operators:",
          `    - { name: ops, password_hash: "${HASH}" }`,
        ),
      ),
    );
    expect(c.web).toEqual({ listen: "127.0.0.1:8025", operators: [{ name: "ops", password_hash: HASH }] });
  });

  it("reports a bad name, a hash that is not scrypt, an unknown key and a duplicate name at their lines", async () => {
    const text = [
      "web:",
      "  listen: 127.0.0.1:8025",
      "  operators:",
      `    - { name: "a@b", password_hash: "${HASH}" }`,
      "    - { name: ok, password_hash: hunter2 }",
      `    - { name: ok2, password_hash: "${HASH}", password: x }`,
      "  theme: dark",
    ];
    const issues = await configIssues(await t.write("q.yaml", lines(...text)));
    expect(issues.map((i) => [i.line, i.message])).toEqual([
      [4, expect.stringMatching(/^web\.operators\[0\]\.name: expected letters.*no '@'.*got "a@b"$/)],
      [
        5,
        expect.stringMatching(/^web\.operators\[1\]\.password_hash: expected an scrypt hash.*got "hunter2"$/),
      ],
      [6, 'unknown key "password" in web.operators[2]'],
      [7, 'unknown key "theme" in web'],
    ]);
    const dup = await configIssues(
      await t.write(
        "d.yaml",
        lines(
          "web:",
          "  operators:",
          `    - { name: ops, password_hash: "${HASH}" }`,
          `    - { name: ops, password_hash: "${HASH}" }`,
        ),
      ),
    );
    expect(dup.map((i) => [i.line, i.message])).toEqual([
      [3, expect.stringContaining("operator names must be unique")],
    ]);
  });
});
