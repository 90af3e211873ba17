import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MasterLock, ownerAlive, readOwner } from "../../src/master/lock.js";
import { MasterRunningError } from "../../src/master/errors.js";
import { silentLogger } from "../../src/util/log.js";

let dir: string;
const log = silentLogger();

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-lock-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const { spawn } = await import("node:child_process");
  const c = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => c.on("exit", r));
  return c.pid!;
}

describe("MasterLock", () => {
  it("writes the pid file, refuses a second holder naming pid and host, and releases", async () => {
    const lock = await MasterLock.acquire(dir, log);
    const owner = await readOwner(dir);
    expect(owner).toMatchObject({ pid: process.pid, host: os.hostname() });
    expect(ownerAlive(owner!)).toBe(true);
    const err = await MasterLock.acquire(dir, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterRunningError);
    expect((err as Error).message).toContain(`pid ${process.pid} on ${os.hostname()}`);
    await lock.release();
    await lock.release();
    expect(existsSync(path.join(dir, "master.lock"))).toBe(false);
    expect(existsSync(path.join(dir, "master.pid"))).toBe(false);
    const again = await MasterLock.acquire(dir, log);
    await again.release();
  });

  it("takes over at once a lock whose owner is gone", async () => {
    await mkdir(path.join(dir, "master.lock"));
    await writeFile(path.join(dir, "master.pid"), `${await deadPid()}\n${os.hostname()}\n\n`);
    const lock = await MasterLock.acquire(dir, log);
    expect((await readOwner(dir))?.pid).toBe(process.pid);
    await lock.release();
  });

  it("takes over a lock whose pid now belongs to another process (start time differs)", async () => {
    await mkdir(path.join(dir, "master.lock"));
    await writeFile(path.join(dir, "master.pid"), `${process.pid}\n${os.hostname()}\n1\n`);
    const lock = await MasterLock.acquire(dir, log);
    const pidFile = await readFile(path.join(dir, "master.pid"), "utf8");
    expect(pidFile.split("\n")[2]).not.toBe("1");
    await lock.release();
  });

  it("does not take over a lock held on another host", async () => {
    await mkdir(path.join(dir, "master.lock"));
    await writeFile(path.join(dir, "master.pid"), `1\nsome-other-host\n\n`);
    const err = await MasterLock.acquire(dir, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterRunningError);
    expect((err as Error).message).toContain("pid 1 on some-other-host");
  });
});
