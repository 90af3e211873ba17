import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HostHealthStore, hostFileName, isAvailable, readHostHealth } from "../../src/delivery/health.js";
import type { HostError } from "../../src/delivery/outcome.js";

let dir: string;
let clock: number;
const now = (): number => clock;
const refused: HostError = { kind: "connect", message: "cannot connect: connect ECONNREFUSED 127.0.0.1:25" };

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "qrunner-health-"));
  clock = 1_700_000_000_000;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("HostHealthStore", () => {
  it("counts a host without a record as up", async () => {
    const store = new HostHealthStore(dir, { now });
    const r = await store.get("mx1:25");
    expect(r).toMatchObject({ id: "mx1:25", state: "up", consecutiveFailures: 0, nextProbe: null });
    expect(await store.available("mx1:25")).toBe(true);
    expect(await store.all()).toEqual([]);
  });

  it("goes down on a host error, starting one outage, and is up again on the first success", async () => {
    const store = new HostHealthStore(dir, { now, probeMax: 30_000 });
    const first = await store.markFailure("mx1:25", refused);
    expect(first.outageStarted).toBe(true);
    expect(first.record).toMatchObject({
      state: "down",
      since: clock,
      consecutiveFailures: 1,
      lastError: refused.message,
      lastErrorKind: "connect",
      nextProbe: clock + 1000,
      probeInterval: 1000,
    });
    expect(await store.available("mx1:25")).toBe(false);

    // more messages failing during the same outage: counted, not a new outage, the probe not pushed back
    clock += 10;
    const again = await store.markFailure("mx1:25", refused);
    expect(again.outageStarted).toBe(false);
    expect(again.record).toMatchObject({
      consecutiveFailures: 2,
      nextProbe: first.record.nextProbe,
      probeInterval: 1000,
    });

    clock += 1000;
    expect(await store.available("mx1:25")).toBe(true); // the probe is due
    const back = await store.markSuccess("mx1:25");
    expect(back.recovered).toBe(true);
    expect(back.record).toMatchObject({
      state: "up",
      since: clock,
      consecutiveFailures: 0,
      nextProbe: null,
      lastSuccess: clock,
    });
    expect((await store.markSuccess("mx1:25")).recovered).toBe(false);

    // a later failure is a new outage
    clock += 60_000;
    expect((await store.markFailure("mx1:25", "421 too busy")).outageStarted).toBe(true);
  });

  it("doubles the probe interval after each failed probe, up to probe_max", async () => {
    const store = new HostHealthStore(dir, { now, probeMax: 10_000 });
    let r = (await store.markFailure("h", refused)).record;
    const intervals = [r.probeInterval];
    for (let i = 0; i < 6; i++) {
      clock = r.nextProbe ?? clock; // the probe runs when it is due, and fails
      r = (await store.markFailure("h", refused)).record;
      expect(r.nextProbe).toBe(clock + (r.probeInterval ?? 0));
      intervals.push(r.probeInterval);
    }
    expect(intervals).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it("lets one worker claim a due probe", async () => {
    const a = new HostHealthStore(dir, { now });
    const b = new HostHealthStore(dir, { now });
    await a.markFailure("h", refused);
    expect(await a.claimProbe("h", 5000)).toBe(false); // not due yet
    clock += 1000;
    const claims = await Promise.all([a.claimProbe("h", 5000), b.claimProbe("h", 5000)]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await b.available("h")).toBe(false); // held while the probe runs
    // the claimed probe fails: the next one is 2s away
    const r = (await a.markFailure("h", refused)).record;
    expect(r).toMatchObject({ probeInterval: 2000, nextProbe: clock + 2000, probeStarted: null });
  });

  it("shares records between store instances and processes through the state directory", async () => {
    const a = new HostHealthStore(dir, { now });
    await a.markFailure("mx1.example.org:25", {
      kind: "greeting",
      message: "service not available: 421 busy",
      code: 421,
    });
    await a.markSuccess("mx2.example.org:25");
    const b = new HostHealthStore(dir, { now });
    expect(await b.get("mx1.example.org:25")).toMatchObject({ state: "down", lastErrorKind: "greeting" });
    expect((await b.all()).map((r) => [r.id, r.state])).toEqual([["mx1.example.org:25", "down"]]);
    const listed = await readHostHealth(dir);
    expect(listed.map((r) => r.id)).toEqual(["mx1.example.org:25"]);
    const named = await readHostHealth(dir, ["mx2.example.org:25", "mx1.example.org:25"]);
    expect(named.map((r) => [r.id, r.state])).toEqual([
      ["mx2.example.org:25", "up"],
      ["mx1.example.org:25", "down"],
    ]);
  });

  it("starts exactly one outage when many failures race from several instances", async () => {
    const stores = [
      new HostHealthStore(dir, { now }),
      new HostHealthStore(dir, { now }),
      new HostHealthStore(dir, { now }),
    ];
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) => stores[i % 3]!.markFailure("h", refused)),
    );
    expect(outcomes.filter((o) => o.outageStarted)).toHaveLength(1);
    expect((await new HostHealthStore(dir, { now }).get("h")).consecutiveFailures).toBe(12);
  });

  it("trusts an up record it read or wrote for cacheMs, then reads the file again", async () => {
    const mine = new HostHealthStore(dir, { now, cacheMs: 200 });
    const other = new HostHealthStore(dir, { now, cacheMs: 0 });
    expect((await mine.get("h")).state).toBe("up");
    await other.markFailure("h", refused); // another worker takes the host down
    expect((await mine.get("h")).state).toBe("up"); // within cacheMs: the record read before
    expect((await other.get("h")).state).toBe("down"); // no cache: the file
    await new Promise((r) => setTimeout(r, 250));
    expect((await mine.get("h")).state).toBe("down");
    // its own changes are seen at once
    await mine.markSuccess("h");
    expect((await mine.get("h")).state).toBe("up");
  });

  it("never trusts a down record from memory: another worker's probe may have brought the host back", async () => {
    const mine = new HostHealthStore(dir, { now, cacheMs: 60_000 });
    const other = new HostHealthStore(dir, { now, cacheMs: 60_000 });
    await mine.markFailure("h", refused); // written by this store, and down
    expect((await mine.get("h")).state).toBe("down");
    clock += 1000;
    expect(await other.claimProbe("h", 5000)).toBe(true);
    await other.markSuccess("h"); // the other worker's probe got through
    expect((await mine.get("h")).state).toBe("up"); // at once, though cacheMs is a minute
    expect(await mine.available("h")).toBe(true);
  });

  it("lets a caller that found the host down send when it is up by the time it claims", async () => {
    const mine = new HostHealthStore(dir, { now });
    const other = new HostHealthStore(dir, { now });
    await mine.markFailure("h", refused);
    clock += 1000;
    const seen = await mine.get("h"); // down, its probe due
    expect(isAvailable(seen, clock)).toBe(true);
    expect(await other.claimProbe("h", 5000)).toBe(true);
    await other.markSuccess("h");
    // the snapshot said down; the claim finds it up and says go (not "someone else holds the probe")
    expect(await mine.claimProbe("h", 5000)).toBe(true);
    expect((await mine.get("h")).probeStarted).toBeNull();
  });

  it("writes atomically, owner-only, and leaves no temp or lock files behind", async () => {
    const store = new HostHealthStore(dir, { now });
    await store.markFailure("h", refused);
    await store.markSuccess("h");
    const files = await readdir(path.join(dir, "hosts"));
    expect(files).toEqual(["h.json"]);
    expect((await stat(path.join(dir, "hosts", "h.json"))).mode & 0o777).toBe(0o600);
  });

  it("keeps every host id inside the hosts directory", async () => {
    const store = new HostHealthStore(dir, { now });
    const ids = [
      "../../escape",
      "..",
      ".",
      "/etc/passwd",
      "a/b",
      "a%2Fb",
      "mx:25",
      "ünï",
      "x".repeat(300),
      "",
    ];
    for (const id of ids) await store.markFailure(id, refused);
    const files = await readdir(path.join(dir, "hosts"));
    expect(files).toHaveLength(ids.length); // distinct ids, distinct files
    expect(files.every((f) => !f.includes("/") && !f.startsWith(".") && f.endsWith(".json"))).toBe(true);
    expect(await readdir(dir)).toEqual(["hosts"]);
    for (const id of ids) expect((await store.get(id)).state).toBe("down");
    expect((await readHostHealth(dir)).map((r) => r.id).sort()).toEqual([...ids].sort());
  });

  it("names files readably for ordinary ids", () => {
    expect(hostFileName("mx1.example.org:25")).toBe("mx1.example.org%3A25.json");
    expect(hostFileName("relay-a")).toBe("relay-a.json");
  });

  it("isAvailable: up, or down with the probe due", () => {
    const base = {
      id: "h",
      since: 0,
      consecutiveFailures: 1,
      lastError: null,
      lastErrorKind: null,
      lastErrorAt: null,
      lastSuccess: null,
      probeInterval: 1000,
      probeStarted: null,
    };
    expect(isAvailable({ ...base, state: "up", nextProbe: null }, 5)).toBe(true);
    expect(isAvailable({ ...base, state: "down", nextProbe: 10 }, 5)).toBe(false);
    expect(isAvailable({ ...base, state: "down", nextProbe: 10 }, 10)).toBe(true);
  });
});
