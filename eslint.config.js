// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";
import regexpPlugin from "eslint-plugin-regexp";

/**
 * The layers of src/, lowest first. A module may import from its own layer and the ones below it,
 * never from a layer above (queue knows nothing of runners, runners nothing of the master or the CLI;
 * the master and the workers share only src/protocol/). Enforced with no-restricted-imports on the
 * import specifiers, which needs no module resolution (the .js specifiers name .ts files).
 */
const LAYERS = {
  util: [],
  queue: ["util"],
  config: ["util"],
  lists: ["util", "config", "queue"],
  delivery: ["util", "config", "queue"],
  protocol: ["util", "config", "lists"],
  intake: ["util", "config", "queue", "lists"],
  runners: ["util", "config", "queue", "lists", "delivery", "protocol"],
  metrics: ["util", "config", "queue", "lists", "delivery", "intake", "protocol"],
  // the web console: read and act on queues, lists and hosts; served by the master or by `qrunner web`
  web: ["util", "config", "queue", "lists", "delivery", "intake", "protocol"],
  master: ["util", "config", "queue", "lists", "delivery", "intake", "protocol", "metrics", "web"],
  cli: [
    "util",
    "config",
    "queue",
    "lists",
    "delivery",
    "intake",
    "protocol",
    "metrics",
    "master",
    "runners",
    "web",
  ],
  demo: ["util", "queue"],
};

/** One config block per layer: every other top-level directory of src/ is off limits. */
const layering = Object.entries(LAYERS).map(([layer, allowed]) => {
  const forbidden = Object.keys(LAYERS).filter((l) => l !== layer && !allowed.includes(l));
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: forbidden.map((l) => ({
            group: [`../${l}/*`, `../../${l}/*`, `../../../${l}/*`],
            message: `src/${layer} may not import from src/${l} (layering: see eslint.config.js LAYERS)`,
          })),
        },
      ],
      // the same rule for dynamic import("../layer/x.js"), which no-restricted-imports does not see
      "no-restricted-syntax": [
        "error",
        ...(forbidden.length === 0
          ? []
          : [
              {
                selector: `ImportExpression > Literal[value=/^([.][.][/])+(${forbidden.join("|")})[/]/]`,
                message: `src/${layer} may not import from ${forbidden.map((l) => `src/${l}`).join(", ")} (layering)`,
              },
            ]),
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "qfiles/", "var/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { project: "./tsconfig.test.json", tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  ...layering,
  // Mail comes from strangers: every regex in src/ must run in time linear in its input (a regex that
  // backtracks, or that retries a quantifier at every offset, lets one crafted message stall a runner).
  // The plugin's recommended set too, without its purely stylistic rules.
  {
    files: ["src/**/*.ts"],
    plugins: regexpPlugin.configs.recommended.plugins,
    rules: {
      ...regexpPlugin.configs.recommended.rules,
      "regexp/no-super-linear-backtracking": ["error", { report: "potential" }],
      "regexp/no-super-linear-move": [
        "error",
        { report: "potential", ignoreSticky: false, ignorePartial: false },
      ],
      "regexp/prefer-w": "off",
      "regexp/use-ignore-case": "off",
      "regexp/prefer-range": "off",
      "regexp/prefer-character-class": "off",
      "regexp/no-unused-capturing-group": "off",
    },
  },
  {
    files: ["**/*.js", "bin/*"],
    languageOptions: { globals: globals.node },
  },
);
