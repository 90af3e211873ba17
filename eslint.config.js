// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";
import regexpPlugin from "eslint-plugin-regexp";

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
