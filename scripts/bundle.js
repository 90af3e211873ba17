// The second step of `npm run build`: the CLI as one ESM bundle, dist/bundle/cli.js, with one chunk
// per part it loads lazily (each runner, the master, the config loader...). bin/qrunner runs it when
// it is there. Every process (the master and each of its workers) then loads a few files instead of
// about a hundred modules of ours and pino's: about 60-90 ms of CPU less per process at start, which
// on a small machine starting 7 processes at once is most of the cold start (docs/performance.md).
//
// esbuild comes with the dev dependencies (through vitest); without it the bundle is skipped and
// bin/qrunner runs dist/cli/main.js, the same code unbundled.
import { rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.join(ROOT, "dist/bundle");

let esbuild;
try {
  esbuild = await import("esbuild");
} catch {
  process.stderr.write("bundle: esbuild not installed; bin/qrunner runs dist/cli/main.js unbundled\n");
  process.exit(0);
}
rmSync(OUT, { recursive: true, force: true });
await esbuild.build({
  entryPoints: { cli: path.join(ROOT, "dist/cli/main.js") },
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // packages left to node's own loading: those that read files of their own at run time or load
  // native or optional parts (etcd3's gRPC), and those the code already loads itself when first used
  external: ["etcd3", "nodemailer", "smtp-server", "mailparser", "prom-client"],
  // CommonJS packages inside an ESM bundle still call require() for node's own modules
  banner: {
    js: 'import { createRequire as __qrCreateRequire } from "node:module"; const require = __qrCreateRequire(import.meta.url);',
  },
  logLevel: "warning",
});
