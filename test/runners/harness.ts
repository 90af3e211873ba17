/**
 * In-process runner tests: a real site in a temp dir (config and lists loaded as a worker loads
 * them), the RunnerContext a worker builds (worker.ts), real Switchboards, a silent logger, and an
 * AbortController for stop.
 */
import { loadAll } from "../../src/lists/load.js";
import type { RunnerName } from "../../src/config/schema.js";
import { Queues, type RunnerContext } from "../../src/runners/context.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { WHOLE, type Slice } from "../../src/queue/slice.js";
import type { Entry } from "../../src/queue/types.js";
import { silentLogger } from "../../src/util/log.js";
import type { Settings } from "../../src/protocol/worker.js";
import { makeSite, type ListSpec, type Site } from "../helpers/site.js";

export const LIST = "dev@example.org";

export interface Rig {
  site: Site;
  settings: Settings;
  ctx: RunnerContext;
  abort: AbortController;
  /** a Switchboard over a queue's whole space (shared with the runner's queues) */
  queue(name: string): Promise<Switchboard>;
  /** the entries queued (`.qf`) in a queue now, read without taking them */
  queued(name: string): Promise<Entry[]>;
  /** take the next due entry of a queue in progress, as the loop would; fails when there is none */
  take(name: string): Promise<Entry>;
  close(): Promise<void>;
}

export async function makeRig(
  runner: RunnerName,
  configBody = "",
  lists: ListSpec[] = [],
  slice: Slice = WHOLE,
): Promise<Rig> {
  const site = await makeSite(configBody, lists);
  const settings: Settings = await loadAll(site.configFile);
  const logger = silentLogger();
  const queues = new Queues(settings.config.qfiles, logger);
  const abort = new AbortController();
  const ctx: RunnerContext = {
    runner,
    slice,
    settings: () => settings,
    logger,
    queues,
    signal: abort.signal,
  };
  const rig: Rig = {
    site,
    settings,
    ctx,
    abort,
    queue: (name) => queues.get(name),
    queued: async (name) => {
      const sb = await queues.get(name);
      const names = (await site.files(name)).filter((f) => f.endsWith(".qf")).sort();
      return Promise.all(names.map((n) => sb.peek(n)));
    },
    take: async (name) => {
      const e = await (await queues.get(name)).dequeue();
      if (!e) throw new Error(`no due entry in ${name}`);
      return e;
    },
    close: async () => {
      abort.abort();
      await queues.close();
      await site.cleanup();
    },
  };
  return rig;
}

/** A promise with its resolve function, to hold a handler until the test lets it go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
