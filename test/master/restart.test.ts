import type { ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import { NODE_REFUSED_EXIT, judgeExit, markStalled, restartDelay } from "../../src/master/restart.js";
import { newSlot } from "../../src/master/slot.js";
import { planWorkers } from "../../src/master/plan.js";
import { configSchema } from "../../src/config/schema.js";
import { WorkerExit } from "../../src/protocol/worker.js";
import { silentLogger } from "../../src/util/log.js";

const spec = { ...planWorkers(configSchema.parse({}))[0]!, maxRestarts: 3 };
const child = { pid: 4242 } as ChildProcess;
const log = silentLogger();
const WINDOW = 600_000;

describe("judgeExit", () => {
  it("restarts a failed or stalled worker, and not one stopped on purpose, done or refusing its config", () => {
    const judge = (intent: "run" | "stop" | "stall", code: number | null, stopping = false) => {
      const slot = Object.assign(newSlot(spec), { intent });
      return { restart: judgeExit(slot, child, code, null, 10, stopping, log), slot };
    };
    expect(judge("run", 70).restart).toBe(true);
    expect(judge("run", 70).slot.lastError).toBe("exited with code 70");
    expect(judge("stall", null).restart).toBe(true);
    expect(judge("run", 70, true)).toMatchObject({ restart: false, slot: { state: "stopped" } });
    expect(judge("stop", 70)).toMatchObject({ restart: false, slot: { state: "stopped" } });
    expect(judge("run", WorkerExit.OK)).toMatchObject({ restart: false, slot: { state: "stopped" } });
    expect(judge("run", WorkerExit.USAGE)).toMatchObject({ restart: false, slot: { state: "gave-up" } });
    expect(judge("run", NODE_REFUSED_EXIT)).toMatchObject({ restart: false, slot: { state: "gave-up" } });
    expect(judge("run", WorkerExit.CONFIG)).toMatchObject({
      restart: false,
      slot: { state: "config-error" },
    });
  });

  it("names the node options a worker was refused with (exit 9)", () => {
    const slot = Object.assign(newSlot(spec), { nodeOptions: ["--no-such-option"] });
    expect(judgeExit(slot, child, 9, null, 10, false, log)).toBe(false);
    expect(slot.lastError).toMatch(/node refused .*exit 9.*--no-such-option/);
  });

  it("names the signal that killed a worker", () => {
    const slot = newSlot(spec);
    expect(judgeExit(slot, child, null, "SIGKILL", 10, false, log)).toBe(true);
    expect(slot.lastError).toBe("killed by SIGKILL");
  });
});

describe("restartDelay", () => {
  it("backs off, doubling, and gives up at max_restarts within the window", () => {
    const slot = newSlot(spec);
    const delays: Array<number | null> = [];
    for (let i = 0; i < 4; i++) {
      delays.push(restartDelay(slot, 10, { backoffBaseMs: 100 }, WINDOW, log));
      if (slot.state === "backoff") slot.restartTimes.push(Date.now());
    }
    expect(delays).toEqual([100, 200, 400, null]);
    expect(slot.state).toBe("gave-up");
  });

  it("forgets restarts older than the window, and starts the backoff over after a healthy run", () => {
    const slot = Object.assign(newSlot(spec), { failStreak: 5, restartTimes: [0, 0, 0] });
    expect(restartDelay(slot, 300_000, { backoffBaseMs: 100 }, WINDOW, log)).toBe(100);
    expect(slot.restartTimes).toEqual([]);
    expect(slot.nextStartAt).toBeGreaterThan(Date.now());
  });
});

describe("markStalled", () => {
  it("marks a worker never ready in time as stalled, and leaves a fresh one alone", () => {
    const now = 10_000_000;
    const late = Object.assign(newSlot(spec), { startedAt: now - 60_001 });
    expect(markStalled(late, child, now, 60_000, log)).toBe(true);
    expect(late).toMatchObject({ intent: "stall", state: "stalled" });
    expect(late.lastError).toMatch(/^stalled: not ready /);
    const fresh = Object.assign(newSlot(spec), { startedAt: now - 1000 });
    expect(markStalled(fresh, child, now, 60_000, log)).toBe(false);
    expect(fresh.intent).toBe("run");
  });
});
