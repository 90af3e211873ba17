/**
 * What a test file that runs the real CLI needs around each test: dist/ built, and everything the test
 * started (sites, sinks, daemons) stopped and removed after it, newest first, whether the test passed
 * or not.
 *
 *   const t = testScope();
 *   it("...", async () => {
 *     const sink = t.own(await startSink());
 *     const site = t.own(await makeSite(body, [DEV]));
 *     const master = t.spawn(["start", "-C", site.configFile]);
 *   });
 */
import { afterEach, beforeAll } from "vitest";
import { requireBuild, spawnCli, stop, type Running, type SpawnOptions } from "./process.js";

/** Sites and list or delivery sites have cleanup(), sinks close(). */
export type Owned = { close(): Promise<unknown> } | { cleanup(): Promise<unknown> };

export interface Scope {
  /** close or clean up `x` after the test; returns it */
  own<T extends Owned>(x: T): T;
  /** `qrunner ARGS`, sent `stopWith` (default SIGTERM) after the test unless it has exited */
  spawn(args: string[], opts?: SpawnOptions & { stopWith?: NodeJS.Signals }): Running;
  /** stop a process started otherwise after the test, as `spawn` does */
  stopAfter(r: Running, sig?: NodeJS.Signals): Running;
  /** run `fn` after the test */
  defer(fn: () => unknown): void;
}

export function testScope(): Scope {
  beforeAll(() => requireBuild());
  const undo: (() => unknown)[] = [];
  afterEach(async () => {
    let first: unknown;
    for (const fn of undo.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  });
  const scope: Scope = {
    own(x) {
      undo.push(() => ("close" in x ? x.close() : x.cleanup()));
      return x;
    },
    spawn(args, opts = {}) {
      const { stopWith, ...rest } = opts;
      return scope.stopAfter(spawnCli(args, rest), stopWith);
    },
    stopAfter(r, sig = "SIGTERM") {
      undo.push(() => stop(r, sig));
      return r;
    },
    defer(fn) {
      undo.push(fn);
    },
  };
  return scope;
}
