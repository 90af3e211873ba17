// Runs the built master (dist/) with fake workers: node run-master.js CONFIG, or through a link named
// qrunner as `node DIR/qrunner start CONFIG` (what `qrunner stop`/`reload` check a master's command line for)
import { fileURLToPath } from "node:url";
import { runMaster } from "../../dist/master/master.js";
import { loadAll } from "../../dist/lists/load.js";

const fake = fileURLToPath(new URL("./fake-worker.js", import.meta.url));
// FAKE_BAD_OPTION (comma-separated runner names): that worker gets a node option node refuses (exit 9)
const badOption = (process.env.FAKE_BAD_OPTION ?? "").split(",");
try {
  process.exitCode = await runMaster({
    configFile: process.argv[process.argv.length - 1],
    load: loadAll,
    command: (spec) => ({
      file: process.execPath,
      args: [fake, `--runner=${spec.runner}`, `--slice=${spec.slice}`],
      execArgv: badOption.includes(spec.runner) ? ["--qrunner-no-such-option"] : [],
    }),
    tuning: { backoffBaseMs: 200, backoffMaxMs: 1000 },
    statusIntervalMs: 500,
  });
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exitCode = err.code === "EMASTER_RUNNING" ? 1 : err.code === "ECONFIG" ? 78 : 70;
}
