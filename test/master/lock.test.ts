import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { mkdir, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeEach, describe, expect, it } from "vitest";
import { MasterLock } from "../../src/master/lock.js";
import { ownerAlive, parseOwner, readOwner } from "../../src/master/owner-record.js";
import { MasterRunningError } from "../../src/master/errors.js";
import { bootId, procStat } from "../../src/master/proc.js";
import { silentLogger } from "../../src/util/log.js";
import { testScope } from "../helpers/scope.js";
import { tempDir } from "../helpers/tmp.js";
import { requireBuild } from "../helpers/site.js";

const t = testScope({ build: false });
const log = silentLogger();
let dir: string;
beforeEach(async () => {
  dir = t.own(await tempDir("qrunner-lock-")).dir;
});

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => c.on("exit", r));
  return c.pid!;
}

/** A live child process with this argv after `node -e <idle>`; resolves once it runs. */
async function liveChild(...args: string[]): Promise<ChildProcess> {
  const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 60000)", ...args], { stdio: "ignore" });
  t.stopAfter(c, "SIGKILL");
  await new Promise((r) => c.once("spawn", r));
  // wait until the exec is done (the command line is node's, not the forked parent's)
  for (let i = 0; i < 100 && !readFileSync(`/proc/${c.pid}/cmdline`, "utf8").includes("setInterval"); i++)
    await new Promise((r) => setTimeout(r, 20));
  return c;
}

/** A held lock: the lock directory and an owner record with this text. */
async function heldLock(record: string | Buffer): Promise<void> {
  await mkdir(path.join(dir, "master.lock"));
  await writeFile(path.join(dir, "master.pid"), record);
}

function recordOf(pid: number, boot = bootId() ?? ""): string {
  return `${pid}\n${os.hostname()}\n${procStat(pid)?.startTime ?? ""}\n${boot}\n`;
}

async function refused(): Promise<MasterRunningError> {
  const err = await MasterLock.acquire(dir, log).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MasterRunningError);
  return err as MasterRunningError;
}

async function takenOver(): Promise<void> {
  const lock = await MasterLock.acquire(dir, log);
  expect(await readOwner(dir)).toMatchObject({ pid: process.pid, bootId: bootId() });
  await lock.release();
}

describe("MasterLock", () => {
  it("writes the owner record with the boot id, refuses a second holder naming pid and host, and releases", async () => {
    const lock = await MasterLock.acquire(dir, log);
    const owner = await readOwner(dir);
    expect(owner).toEqual({
      pid: process.pid,
      host: os.hostname(),
      startTime: procStat(process.pid)!.startTime,
      bootId: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
    });
    expect(ownerAlive(owner!, dir)).toBe(true);
    const err = await refused();
    expect(err.message).toContain(`pid ${process.pid} on ${os.hostname()}`);
    await lock.release();
    await lock.release();
    expect(existsSync(path.join(dir, "master.lock"))).toBe(false);
    expect(existsSync(path.join(dir, "master.pid"))).toBe(false);
    const again = await MasterLock.acquire(dir, log);
    await again.release();
  });

  it("takes over at once a lock whose record is empty", async () => {
    await heldLock("");
    await takenOver();
  });

  it("takes over at once a lock whose record is garbage (the unsynced bytes a power loss leaves)", async () => {
    await heldLock(Buffer.alloc(64));
    await takenOver();
    await heldLock("\x01\x02 not a record\n");
    await takenOver();
  });

  it("takes over at once a lock whose record is from another boot, even naming a live qrunner master", async () => {
    // a process that looks like a master of an earlier version (it runs `qrunner start`)
    const c = await liveChild("/usr/lib/qrunner/bin/qrunner", "start");
    await heldLock(recordOf(c.pid!));
    expect((await refused()).message).toContain(`pid ${c.pid}`);
    await writeFile(path.join(dir, "master.pid"), recordOf(c.pid!, "00000000-0000-4000-8000-000000000000"));
    await takenOver();
    expect(c.exitCode).toBe(null);
  });

  it("takes over at once a lock whose owner is gone", async () => {
    await heldLock(recordOf(await deadPid()));
    await takenOver();
  });

  it("takes over a lock whose pid now belongs to another process (start time differs)", async () => {
    await heldLock(`${process.pid}\n${os.hostname()}\n1\n${bootId()}\n`);
    await takenOver();
  });

  it("takes over at once a lock whose pid is a live process that is no qrunner master", async () => {
    const c = await liveChild("not-a-master");
    await heldLock(recordOf(c.pid!));
    await takenOver();
    // a record of an earlier version (no boot id, no start time) naming it is no better
    await heldLock(`${c.pid}\n${os.hostname()}\n\n`);
    await takenOver();
  });

  it("refuses a live master's lock, even when its record was emptied, and takes it once the master stops", async () => {
    requireBuild();
    const holder = spawn(process.execPath, [fileURLToPath(new URL("./hold-lock.js", import.meta.url)), dir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    t.stopAfter(holder, "SIGKILL");
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on("data", (d: Buffer) => d.toString().includes("locked") && resolve());
      holder.once("exit", (code) => reject(new Error(`the holder exited with ${code}`)));
    });
    expect((await refused()).message).toContain(`pid ${holder.pid} on ${os.hostname()}`);
    // truncated in place: the holder still has it open, and that is what counts
    await truncate(path.join(dir, "master.pid"), 0);
    expect(await readOwner(dir)).toBe(null);
    expect((await refused()).message).toContain(`pid ${holder.pid} on ${os.hostname()}`);
    const gone = new Promise((r) => holder.once("exit", r));
    holder.kill("SIGTERM");
    await gone;
    await takenOver();
  });

  it("waits for, then refuses, a lock another process is taking (its record still being written)", async () => {
    await mkdir(path.join(dir, "master.lock"));
    // the taker holds its record open under the temporary name (/proc/<pid>/fd shows it)
    const tmp = path.join(dir, "master.pid.1234.tmp");
    await writeFile(tmp, "");
    const taker = spawn(
      process.execPath,
      ["-e", `require("fs").openSync(${JSON.stringify(tmp)}, "r"); setInterval(() => {}, 60000)`],
      { stdio: "ignore" },
    );
    t.stopAfter(taker, "SIGKILL");
    const holds = () => {
      try {
        return readdirSync(`/proc/${taker.pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${taker.pid}/fd/${fd}`) === tmp;
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 250 && !holds(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(holds()).toBe(true);
    const t0 = Date.now();
    const err = await refused();
    expect(err.message).toContain(`pid ${taker.pid}`);
    // it looked again for a while (ten looks 200 ms apart) before it gave up
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
  });

  it("leaves a dead owner's lock to a live process taking it, and removes a dead taker's leftover", async () => {
    await heldLock(recordOf(await deadPid()));
    const leftover = path.join(dir, `master.pid.${await deadPid()}.tmp`);
    await writeFile(leftover, "");
    const taker = spawn(
      process.execPath,
      [
        "-e",
        `require("fs").openSync(${JSON.stringify(dir)} + "/master.pid." + process.pid + ".tmp", "w"); setInterval(() => {}, 60000)`,
      ],
      { stdio: "ignore" },
    );
    t.stopAfter(taker, "SIGKILL");
    const mine = path.join(dir, `master.pid.${taker.pid}.tmp`);
    for (let i = 0; i < 250 && !existsSync(mine); i++) await new Promise((r) => setTimeout(r, 20));
    expect((await refused()).message).toContain(`pid ${taker.pid}`);
    expect(existsSync(leftover)).toBe(false);
    const gone = new Promise((r) => taker.once("exit", r));
    taker.kill("SIGKILL");
    await gone;
    await takenOver();
  });

  it("does not take over a lock held on another host", async () => {
    await heldLock(`1\nsome-other-host\n\n`);
    expect((await refused()).message).toContain("pid 1 on some-other-host");
  });
});

describe("parseOwner", () => {
  it("reads whole records of this version and earlier ones, and nothing else", () => {
    expect(parseOwner("12\nh\n345\nb-1\n")).toEqual({ pid: 12, host: "h", startTime: "345", bootId: "b-1" });
    expect(parseOwner("12\nh\n345\n")).toEqual({ pid: 12, host: "h", startTime: "345", bootId: null });
    for (const bad of ["", "\n", "0\nh\n\n", "-3\nh\n", "12\n\n", "1e3\nh\n", "12\nh\nx\n", "\0\0\0\0"])
      expect(parseOwner(bad), JSON.stringify(bad)).toBe(null);
  });
});
