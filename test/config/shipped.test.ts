/** The shipped config, the example list and docs/config.md keep up with the schemas. */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { loadConfig } from "../../src/config/load.js";
import { configSchema } from "../../src/config/schema.js";
import { loadAll } from "../../src/lists/load.js";
import { listSchema } from "../../src/lists/schema.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every key name the schema knows, at any depth. */
function keys(s: z.ZodTypeAny, out = new Set<string>()): Set<string> {
  if (s instanceof z.ZodDefault) return keys(s.removeDefault() as z.ZodTypeAny, out);
  if (s instanceof z.ZodOptional) return keys(s.unwrap() as z.ZodTypeAny, out);
  if (s instanceof z.ZodEffects) return keys(s.innerType() as z.ZodTypeAny, out);
  if (s instanceof z.ZodArray) return keys(s.element as z.ZodTypeAny, out);
  if (s instanceof z.ZodObject)
    for (const [k, v] of Object.entries(s.shape as Record<string, z.ZodTypeAny>)) {
      out.add(k);
      keys(v, out);
    }
  return out;
}

describe("shipped files", () => {
  it("config/qrunner.yaml loads, with its example list, and points where the task says", async () => {
    const file = path.join(root, "config/qrunner.yaml");
    const { config, lists } = await loadAll(file);
    expect(config.lists).toBe(path.join(root, "config/lists"));
    expect(config.qfiles).toBe(path.join(root, "qfiles"));
    expect(config.state).toBe(path.join(root, "var"));
    expect(config.smtp.hosts).toMatchObject([{ host: "127.0.0.1", port: 25 }]);
    expect([...lists.keys()]).toEqual(["dev@example.org"]);
    // every value written there is the default: the file documents, it does not change anything
    const defaults = configSchema.parse({});
    const { file: _f, version: _v, qfiles: _q, state: _s, lists: _l, ...rest } = await loadConfig(file);
    const { qfiles: _dq, state: _ds, lists: _dl, ...restDefaults } = defaults;
    expect(rest).toEqual(restDefaults);
  });

  it("show every config key in config/qrunner.yaml and every list key in the example list", async () => {
    const cfg = await readFile(path.join(root, "config/qrunner.yaml"), "utf8");
    const list = await readFile(path.join(root, "config/lists/dev@example.org.yaml"), "utf8");
    expect([...keys(configSchema)].filter((k) => !new RegExp(`\\b${k}:`).test(cfg))).toEqual([]);
    expect([...keys(listSchema)].filter((k) => !new RegExp(`\\b${k}:`).test(list))).toEqual([]);
  });

  it("docs/config.md documents every key", async () => {
    const doc = await readFile(path.join(root, "docs/config.md"), "utf8");
    const all = [...keys(configSchema), ...keys(listSchema)];
    // as `key`, or within a dotted path: `log.level`, `runners.bounce.idle_only`
    expect(all.filter((k) => !new RegExp(`\`(?:[\\w.]+\\.)?${k}(?:\\.[\\w.]+)?\``).test(doc))).toEqual([]);
  });
});
