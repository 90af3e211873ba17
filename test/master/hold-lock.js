// A master's lock held by a real process (the built MasterLock): node hold-lock.js STATE_DIR.
// Prints "locked" once it holds the lock; releases it on SIGTERM.
import { MasterLock } from "../../dist/master/lock.js";
import { silentLogger } from "../../dist/util/log.js";

const lock = await MasterLock.acquire(process.argv[2], silentLogger());
process.stdout.write("locked\n");
const keep = setInterval(() => undefined, 60_000);
process.on("SIGTERM", () => {
  clearInterval(keep);
  void lock.release().then(() => process.exit(0));
});
