/**
 * `qrunner`: the command-line entry point. Each command lives in its own module and registers itself;
 * modules keep their top-level imports light and load what their action needs when it runs, so that
 * `qrunner inject` (run once per message by an MTA's pipe) starts fast.
 */
import { Command, CommanderError } from "commander";
import { register as registerStart } from "./start.js";
import { register as registerStop } from "./stop.js";
import { register as registerReload } from "./reload.js";
import { register as registerStatus } from "./status.js";
import { register as registerInject } from "./inject.js";
import { register as registerQueue } from "./queue.js";
import { register as registerConfig } from "./config-check.js";
import { register as registerMembers } from "./members.js";
import { register as registerBounce } from "./bounce-scan.js";
import { register as registerModeration } from "./moderation.js";
import { Exit, warn } from "./context.js";

// Queue entries, state, status, logs and archives hold other people's mail and member lists: whatever
// the caller's umask, everything any command creates is 0600 in 0700 directories. Set first, before
// any command can write (the master and its workers, inject, unshunt, the moderation commands...).
process.umask(0o077);

// `qrunner queue list | head`: a closed pipe is the reader's choice, not an error worth a stack trace
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });

const program = new Command();
program
  .name("qrunner")
  .description("A mail queue daemon: durable on-disk queues, sha1-sliced runners, weighted SMTP delivery")
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

for (const register of [
  registerStart,
  registerStop,
  registerReload,
  registerStatus,
  registerInject,
  registerQueue,
  registerConfig,
  registerMembers,
  registerBounce,
  registerModeration,
]) {
  register(program);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // help and version exit 0; usage errors exit 64 (commander has printed the message)
    process.exitCode = err.exitCode === 0 ? Exit.OK : Exit.USAGE;
  } else {
    warn(err instanceof Error ? err.message : String(err));
    process.exitCode = Exit.SOFTWARE;
  }
}
