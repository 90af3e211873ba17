// A stand-in worker speaking the worker IPC protocol (src/protocol/worker.ts), for supervisor tests.
// Usage: node fake-worker.js --runner=NAME --slice=SPEC
// Behaviour per runner, from the environment (comma-separated runner names):
//   FAKE_FAIL   exit 70 before ready        FAKE_SILENT  ready, then no heartbeats
//   FAKE_DUE    heartbeats with entries due and no progress
//   FAKE_LOG    a file: one JSON line per event (start, hup, term) is appended
import { appendFileSync } from "node:fs";

const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? "";
const runner = arg("runner");
const slice = arg("slice");
const has = (v) => (process.env[v] ?? "").split(",").includes(runner);
const record = (event) => {
  if (process.env.FAKE_LOG)
    appendFileSync(process.env.FAKE_LOG, JSON.stringify({ event, runner, slice, pid: process.pid }) + "\n");
};

record("start");
if (has("FAKE_FAIL")) process.exit(70);

const started = Date.now();
let timer;
const stop = () => {
  clearInterval(timer);
  record("term");
  // a real worker finishes the entry in hand first
  setTimeout(() => process.exit(0), 50);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.on("SIGHUP", () => record("hup"));
process.on("disconnect", () => {
  record("disconnect");
  process.exit(0);
});

setTimeout(() => {
  process.send?.({ type: "ready", runner, slice, pid: process.pid });
  if (has("FAKE_SILENT")) return;
  const due = has("FAKE_DUE") ? 5 : 0;
  timer = setInterval(() => {
    process.send?.({ type: "heartbeat", handled: 0, failed: 0, lastProgress: started, due, inHand: 0 });
  }, 200);
}, 100);
