/**
 * The layering of src/ is a lint rule (eslint.config.js LAYERS), not a sentence in the README: a module
 * that imports from a layer above its own fails `npm run lint`. Linted as the text of real modules, so
 * the typed rules find them in the project.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const REPO = path.resolve(import.meta.dirname, "../..");
// only the layering rules, without type information: they read import specifiers, and a typed program
// built while other tests write files under test/ could fail to parse and report nothing at all
const LAYERING_RULES = new Set(["no-restricted-imports", "no-restricted-syntax"]);
const eslint = new ESLint({
  cwd: REPO,
  ruleFilter: ({ ruleId }) => LAYERING_RULES.has(ruleId),
  overrideConfig: { languageOptions: { parserOptions: { project: null, projectService: false } } },
});

async function layeringErrors(file: string, extra: string): Promise<string[]> {
  const text = readFileSync(path.join(REPO, file), "utf8") + "\n" + extra + "\n";
  const [result] = await eslint.lintText(text, { filePath: path.join(REPO, file) });
  const messages = result?.messages ?? [];
  const fatal = messages.find((m) => m.fatal);
  if (fatal) throw new Error(`eslint could not parse ${file}: ${fatal.message}`);
  return messages.filter((m) => m.ruleId !== null && LAYERING_RULES.has(m.ruleId)).map((m) => m.message);
}

describe("layering (npm run lint)", () => {
  it.each([
    [
      "src/queue/names.ts",
      'export { RunnerLoop } from "../runners/base.js";',
      "src/queue may not import from src/runners",
    ],
    ["src/runners/backoff.ts", 'import "../master/plan.js";', "src/runners may not import from src/master"],
    ["src/runners/backoff.ts", 'import "../cli/main.js";', "src/runners may not import from src/cli"],
    [
      "src/lists/bounces/score.ts",
      'import "../../runners/base.js";',
      "src/lists may not import from src/runners",
    ],
    ["src/delivery/hosts.ts", 'import "../runners/base.js";', "src/delivery may not import from src/runners"],
    ["src/master/plan.ts", 'import "../runners/worker.js";', "src/master may not import from src/runners"],
    ["src/web/routes.ts", 'import "../master/status-file.js";', "src/web may not import from src/master"],
    ["src/web/routes.ts", 'import "../cli/main.js";', "src/web may not import from src/cli"],
    ["src/queue/move.ts", 'import "../web/escape.js";', "src/queue may not import from src/web"],
    ["src/lists/held.ts", 'import "../web/escape.js";', "src/lists may not import from src/web"],
    [
      "src/master/plan.ts",
      'export const w = () => import("../runners/worker.js");',
      "src/master may not import from",
    ],
  ])("%s importing %s fails", async (file, line, message) => {
    const errors = await layeringErrors(file, line);
    expect(errors.join("\n")).toContain(message);
  });

  it("the same modules as they are pass, and importing downwards passes", async () => {
    expect(await layeringErrors("src/master/plan.ts", 'import "../protocol/worker.js";')).toEqual([]);
    expect(await layeringErrors("src/runners/backoff.ts", 'import "../queue/names.js";')).toEqual([]);
    expect(await layeringErrors("src/web/routes.ts", 'import "../delivery/hosts.js";')).toEqual([]);
    expect(await layeringErrors("src/master/listeners.ts", 'import "../web/server.js";')).toEqual([]);
    expect(await layeringErrors("src/cli/web.ts", 'import "../web/server.js";')).toEqual([]);
  });
});
