/**
 * What a test file that runs the real CLI needs around each test: dist/ built, and everything the test
 * started (sites, sinks, daemons) stopped and removed after it, newest first, whether the test passed
 * or not.
 *
 *   const t = testScope();
 *   it("...", async () => {
 *     const sink = await t.sink();
 *     const site = await t.site(`smtp: { hosts: [{ host: 127.0.0.1, port: ${sink.port} }] }\n`, [DEV]);
 *     const master = t.spawn(["start", "-C", site.configFile]);
 *   });
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, afterEach, beforeAll } from "vitest";
import { requireBuild, spawnCli, stop, type Running, type SpawnOptions } from "./process.js";
import { makeSite, type ListSpec, type Site } from "./site.js";
import { startSink, type Sink, type SinkOptions } from "./smtp-sink.js";

/** Sites and list or delivery sites have cleanup(), sinks close(). */
export type Owned = { close(): Promise<unknown> } | { cleanup(): Promise<unknown> };

export interface Scope {
  /** makeSite (test/helpers/site.ts), removed after the test */
  site(configBody?: string, lists?: ListSpec[]): Promise<Site>;
  /** a recording SMTP server (test/helpers/smtp-sink.ts), closed after the test */
  sink(opts?: SinkOptions): Promise<Sink>;
  /** close or clean up `x` after the test; returns it */
  own<T extends Owned>(x: T): T;
  /** `qrunner ARGS`, sent `stopWith` (default SIGTERM) after the test unless it has exited */
  spawn(args: string[], opts?: SpawnOptions & { stopWith?: NodeJS.Signals }): Running;
  /** stop a process started otherwise after the test, as `spawn` does */
  stopAfter<P extends Running | ChildProcess>(p: P, sig?: NodeJS.Signals): P;
  /** run `fn` after the test */
  defer(fn: () => unknown): void;
}

/**
 * `build: false` for a file that runs no part of dist/; `until: "all"` for a file whose tests share
 * what its beforeAll started: then it is all undone after the last test.
 */
export function testScope({
  build = true,
  until = "each",
}: { build?: boolean; until?: "each" | "all" } = {}): Scope {
  if (build) beforeAll(() => requireBuild());
  const undo: (() => unknown)[] = [];
  (until === "all" ? afterAll : afterEach)(async () => {
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
    site: async (configBody, lists) => scope.own(await makeSite(configBody, lists)),
    sink: async (opts) => scope.own(await startSink(opts)),
    own(x) {
      undo.push(() => ("close" in x ? x.close() : x.cleanup()));
      return x;
    },
    spawn(args, opts = {}) {
      const { stopWith, ...rest } = opts;
      return scope.stopAfter(spawnCli(args, rest), stopWith);
    },
    stopAfter(p, sig = "SIGTERM") {
      undo.push(() => stop(p, sig));
      return p;
    },
    defer(fn) {
      undo.push(fn);
    },
  };
  return scope;
}
