// Preloaded into every qrunner process by benchmarks/profile.js (NODE_OPTIONS=--import=...; Node 20
// refuses --cpu-prof there). The first SIGUSR2 starts the V8 CPU profiler, the second writes
// <QRUNNER_PROFILE_DIR>/<pid>.cpuprofile, so a profile covers exactly the workload.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import path from "node:path";

const dir = process.env.QRUNNER_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on("SIGUSR2", () => {
    if (!running) {
      running = true;
      session.post("Profiler.enable", () =>
        session.post("Profiler.setSamplingInterval", { interval: 1000 }, () =>
          session.post("Profiler.start"),
        ),
      );
      return;
    }
    running = false;
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(path.join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
