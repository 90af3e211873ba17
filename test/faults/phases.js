// The fault schedule: phases applied in turn, then all together, cycle after cycle. Each phase says
// what it starts and what it lifts; worker kills run on their own timer while a phase asks for them.
import { configText, writeConfig } from "./site.js";
import { alive, runCli, startMaster, workersOf } from "./daemon.js";

const WEIGHT_SETS = [
  [1, 2, 1],
  [3, 1, 1],
  [1, 1, 2],
];

/**
 * The phases of one cycle. `start(h)` and `stop(h)` get the harness: sinks by name, the site, the
 * master handle, counters. Phases that set `kills` have workers SIGKILLed every few hundred ms.
 */
export const PHASES = [
  { name: "calm" },
  { name: "kill workers", kills: true },
  {
    name: "host refuses connections",
    start: (h) =>
      h
        .sink("mx1")
        .down()
        .then(() => h.fault("refuse")),
    stop: (h) => h.sink("mx1").up(),
  },
  {
    name: "host answers 421",
    start: (h) => (h.sink("mx2").setFaults({ greeting: 421 }), h.fault("421")),
    stop: (h) => h.sink("mx2").setFaults({ greeting: undefined }),
  },
  {
    name: "host answers 451",
    start: (h) => (h.sink("mx3").setFaults({ data: 451 }), h.fault("451")),
    stop: (h) => h.sink("mx3").setFaults({ data: undefined }),
  },
  {
    name: "host drops DATA",
    start: (h) => (h.sink("mx1").setFaults({ dropInData: true }), h.fault("drop")),
    stop: (h) => h.sink("mx1").setFaults({ dropInData: undefined }),
  },
  {
    name: "host accepts slowly",
    start: (h) => (h.sink("mx2").setFaults({ dataDelayMs: 1500 }), h.fault("slow")),
    stop: (h) => h.sink("mx2").setFaults({ dataDelayMs: undefined }),
  },
  { name: "weights edited", start: (h) => editWeights(h) },
  {
    name: "invalid edit",
    start: async (h) => {
      writeConfig(h.site, configText(h.sinks, h.weights, { invalid: true }));
      h.fault("invalid edit");
      h.invalidNow = true;
      await new Promise((r) => setTimeout(r, 1500));
      // `status` must show the rejected edit while the old config stays in force
      const st = await runCli(h.repo, ["status", "--json", "-C", h.site.configFile]);
      try {
        if (JSON.parse(st.stdout).rejectedEdit) h.counts.rejectedShownByStatus++;
      } catch {
        // counted as not shown
      }
    },
    stop: (h) => {
      writeConfig(h.site, configText(h.sinks, h.weights));
      h.invalidNow = false;
    },
  },
  { name: "kill master", start: (h) => killMaster(h) },
  {
    name: "together",
    kills: true,
    start: async (h) => {
      await h.sink("mx1").down();
      h.sink("mx2").setFaults({ dropInData: true });
      h.sink("mx3").setFaults({ dataDelayMs: 1500 });
      h.fault("refuse", "drop", "slow");
      editWeights(h);
    },
    stop: async (h) => {
      await h.sink("mx1").up();
      h.sink("mx2").setFaults({ dropInData: undefined });
      h.sink("mx3").setFaults({ dataDelayMs: undefined });
    },
  },
];

function editWeights(h) {
  h.weightSet = (h.weightSet + 1) % WEIGHT_SETS.length;
  h.weights = WEIGHT_SETS[h.weightSet];
  writeConfig(h.site, configText(h.sinks, h.weights));
  h.fault("weight edit");
}

/** SIGKILL the master, then a fresh `qrunner start` as soon as the old process is gone. */
async function killMaster(h) {
  const old = h.master;
  const orphans = workersOf(old.pid).map((w) => w.pid);
  h.kills.push({ at: Date.now(), pid: old.pid, runner: "master" });
  old.child.kill("SIGKILL");
  await old.exited;
  h.counts.masterKills++;
  h.master = startMaster(h.repo, h.site, h.tally);
  h.counts.orphansAtRestart += orphans.filter(alive).length;
  // the orphaned workers notice the closed channel and stop after the entries in hand
  const end = Date.now() + 30_000;
  while (orphans.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  h.counts.orphansLeft += orphans.filter(alive).length;
}

/** SIGKILL a random worker of the current master every 150–450 ms until `until()` says stop. */
export async function killWorkers(h, until) {
  while (!until()) {
    const ws = workersOf(h.master.pid);
    if (ws.length) {
      const w = h.rnd.pick(ws);
      h.tally.killedPids.add(w.pid);
      try {
        process.kill(w.pid, "SIGKILL");
        h.kills.push({ at: Date.now(), pid: w.pid, runner: w.runner });
        h.counts.workerKills++;
        h.counts.killsByRunner[w.runner] = (h.counts.killsByRunner[w.runner] ?? 0) + 1;
      } catch {
        // it exited on its own meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, h.rnd.between(150, 450)));
  }
}
