/**
 * The archive runner: appends each accepted post to its list's monthly mbox
 * (`<state>/archives/<list>/<YYYY-MM>.mbox`, mboxrd). The append is idempotent by entry id, so a post
 * recovered after a crash mid-append is archived once. An archive that cannot be written now keeps
 * its entries queued (retried after `sleep`). It runs at low priority (nice, long sleep).
 */
import path from "node:path";
import type { Logger } from "pino";
import { validateAddress } from "../lists/addresses.js";
import { appendToArchive, ArchiveError } from "../lists/mbox.js";
import type { Entry } from "../queue/types.js";
import { QueueUnavailableError } from "../util/errors.js";
import type { Handler, HandleResult } from "./base.js";
import type { RunnerContext } from "./context.js";

export class ArchiveRunner implements Handler {
  constructor(private readonly ctx: RunnerContext) {}

  async handle(entry: Entry, log: Logger): Promise<HandleResult> {
    const { config, lists } = this.ctx.settings();
    const listAddress = entry.meta.list;
    if (!listAddress) throw new Error("archive entry names no list");
    const list = lists.get(listAddress.toLowerCase());
    if (list && !list.archive) {
      log.info({ list: listAddress }, "archiving is off for this list; entry dropped");
      return;
    }
    // validated before it becomes a path component: nothing can reach outside the state directory
    const dir = path.join(config.state, "archives", validateAddress(listAddress).toLowerCase());
    let r: "appended" | "already";
    try {
      r = await appendToArchive(
        dir,
        entry.id,
        entry.message,
        entry.meta.sender,
        new Date(entry.meta.received),
      );
    } catch (err) {
      // the archive cannot be written now (disk full, lock busy, a file an operator must repair):
      // the entry stays queued and is retried after `sleep`, instead of being shunted and the post
      // missing from the archive for good
      if (err instanceof ArchiveError)
        throw new QueueUnavailableError(`cannot archive now: ${err.message}`, { cause: err });
      throw err;
    }
    log.info({ list: listAddress, result: r }, r === "appended" ? "archived" : "already archived");
  }
}
