/**
 * What the console's buttons do, each through the same code path as the CLI: held posts through the
 * moderation service (src/lists/moderation.ts, as `qrunner approve|reject|discard`), unshunt through
 * src/queue/unshunt.ts (`qrunner queue unshunt`), requeue through src/queue/move.ts (`queue requeue`).
 * Each returns one line for the flash message.
 */
import { describeResult, moderate, type ModerationAction } from "../lists/moderation.js";
import type { ListConfig } from "../lists/schema.js";
import { Boards } from "../queue/boards.js";
import { findEntries } from "../queue/inspect.js";
import { applyOp } from "../queue/move.js";
import { QUEUE_NAMES } from "../queue/types.js";
import { unshuntEntries } from "../queue/unshunt.js";
import type { Logger } from "../util/log.js";
import { describeError } from "../util/errors.js";

export interface ActionResult {
  ok: boolean;
  text: string;
}

/** A full 40-hex-digit entry id: the console's buttons send whole ids, never prefixes. */
const ENTRY_ID = /^[0-9a-f]{40}$/;

export async function moderateHeld(
  dirs: { state: string; qfiles: string },
  list: ListConfig,
  id: string,
  action: ModerationAction,
  by: string,
  logger: Logger,
): Promise<ActionResult> {
  const queues = new Boards(dirs.qfiles);
  try {
    const r = await moderate({ stateDir: dirs.state, queues, logger }, list, id, action, by);
    if (r.status === "failed")
      logger.error({ err: describeError(r.error), id, by }, "web: moderation failed");
    return { ok: r.status === "done", text: describeResult(r) };
  } finally {
    queues.close();
  }
}

export async function unshuntOne(root: string, id: string): Promise<ActionResult> {
  if (!ENTRY_ID.test(id)) return { ok: false, text: "not an entry id" };
  const found = await findEntries(root, id, ["shunt"]);
  const done = await unshuntEntries(root, found);
  const u = done[0];
  return u
    ? { ok: true, text: `${u.id.slice(0, 12)} returned to ${u.to}` }
    : { ok: false, text: `no shunted entry ${id.slice(0, 12)} (returned meanwhile, or in progress)` };
}

/** The runners' queues: where requeue applies (not shunt, bad or hold). */
const RUNNER_QUEUES: string[] = QUEUE_NAMES.filter((q) => q !== "shunt" && q !== "bad");

export async function requeueOne(root: string, id: string, now: number): Promise<ActionResult> {
  if (!ENTRY_ID.test(id)) return { ok: false, text: "not an entry id" };
  const found = (await findEntries(root, id, RUNNER_QUEUES)).filter((e) => e.state === "queued");
  const deferred = found.filter((e) => e.time > now);
  if (deferred.length === 0)
    return { ok: false, text: `no deferred entry ${id.slice(0, 12)} (due already, or gone)` };
  let moved = 0;
  const skipped: string[] = [];
  await applyOp(root, "requeue", deferred, now, RUNNER_QUEUES, {
    tick: () => undefined,
    moved: () => moved++,
    skipped: (_e, why) => skipped.push(why),
  });
  return moved > 0
    ? { ok: true, text: `${id.slice(0, 12)} is due now` }
    : { ok: false, text: `${id.slice(0, 12)} left where it was: ${skipped.join("; ")}` };
}
