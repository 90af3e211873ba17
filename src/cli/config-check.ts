/**
 * `qrunner config check`: validate the config file and every list file, the same way `start` and a reload
 * do, and show every problem at once as `file:line:col: message` (the form editors and CI can jump to).
 */
import type { Command } from "commander";
import { Exit, configPath, setExit, withConfigOption } from "./context.js";
import type { GlobalOptions } from "./context.js";

export function register(program: Command): void {
  const config = withConfigOption(program.command("config").description("work with the config file"));
  withConfigOption(
    config.command("check").description("validate the config and list files; exit 0 when valid, 1 otherwise"),
  )
    .addHelpText(
      "after",
      "\nEach problem is printed on stderr as file:line:col: message.\n\nExample:\n  qrunner config check -C /etc/qrunner/qrunner.yaml",
    )
    .action(async (_opts: GlobalOptions, cmd: Command) => {
      // -C may be given before or after `check`
      const file = configPath(cmd.optsWithGlobals<GlobalOptions>());
      const { inspectConfig } = await import("../config/load.js");
      const { inspectLists } = await import("../lists/load.js");
      const { formatIssue } = await import("../util/errors.js");
      const c = await inspectConfig(file);
      const l = c.listsDir !== undefined ? await inspectLists(c.listsDir) : undefined;
      const issues = [...c.issues, ...(l?.issues ?? [])];
      // folders and files others can write, or that belong to another user (as `postfix check` warns)
      if (c.config) {
        const { checkPermissions } = await import("../config/permissions.js");
        issues.push(...(await checkPermissions(c.config)));
      }
      if (!c.config || issues.length > 0) {
        process.stderr.write(issues.map((i) => formatIssue(i) + "\n").join(""));
        setExit(Exit.FAIL);
        return;
      }
      const cfg = c.config;
      const lists = l?.lists.size ?? 0;
      const runners = Object.entries(cfg.runners);
      const instances = runners.reduce(
        (n, [, r]) => n + (r.instances === "auto" ? cfg.smtp.hosts.length : r.instances),
        0,
      );
      const fallback = cfg.smtp.fallback.length > 0 ? ` (+${cfg.smtp.fallback.length} fallback)` : "";
      process.stdout.write(
        `${cfg.file}: OK (version ${cfg.version.slice(0, 12)}): ${plural(lists, "list")}, ` +
          `${plural(cfg.smtp.hosts.length, "SMTP host")}${fallback}, ` +
          `${plural(runners.length, "runner")} / ${plural(instances, "instance")}\n`,
      );
    });
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
