/**
 * The incoming runner: routes each entry by the envelope recipient it arrived for. A post goes
 * through the list's checks (loop, size, poster), gets the list headers, and fans out into `outgoing`
 * entries for the enabled members (split by smtp.max_recipients, or one per member with VERP) plus
 * one `archive` entry; commands go to `command`, bounces to `bounce`, owner mail to the owners.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { bouncesAddress, routeRecipient, verpAddress, type Route } from "../lists/addresses.js";
import { screenPost } from "../lists/checks.js";
import { decorate, SUBJECT_SCAN_CHARS } from "../lists/headers.js";
import { HeldStore } from "../lists/held.js";
import { heldIdFor } from "../lists/held-ids.js";
import { decodeHeaderText } from "../lists/header-text.js";
import { getHeader, messageId } from "../lists/message.js";
import { enabledRecipients, isMember } from "../lists/members.js";
import type { ListConfig } from "../lists/schema.js";
import { ListStateCache } from "../lists/state-cache.js";
import type { Entry, NewEntryMeta } from "../queue/types.js";
import { UnknownAddressError } from "../util/errors.js";
import type { Handler, HandleResult } from "./base.js";
import type { RunnerContext } from "./context.js";
import { heldForModeration, rejectedForSize, rejectedNonmember } from "../lists/notice-texts.js";
import { queueNotice } from "./notify.js";

/** How often held posts are checked for expiry. */
const EXPIRE_EVERY_MS = 10 * 60_000;

export class IncomingRunner implements Handler {
  private nextExpiry = 0;

  private stateCache: ListStateCache | null = null;

  constructor(private readonly ctx: RunnerContext) {}

  /** Read per post, parsed only when changed; a new state directory (a config edit) starts afresh. */
  private states(stateDir: string): ListStateCache {
    if (this.stateCache?.stateDir !== stateDir) this.stateCache = new ListStateCache(stateDir);
    return this.stateCache;
  }

  /** Held posts past their list's hold_expires are dropped (by the worker of slice 0 only). */
  async tick(): Promise<void> {
    const now = Date.now();
    if (this.ctx.slice.index !== 0 || now < this.nextExpiry) return;
    this.nextExpiry = now + EXPIRE_EVERY_MS;
    const { config, lists } = this.ctx.settings();
    for (const list of lists.values()) {
      try {
        const gone = await new HeldStore(config.state, list.address).expire(now, list.hold_expires);
        if (gone.length)
          this.ctx.logger.info({ list: list.address, expired: gone.map((g) => g.id) }, "held posts expired");
      } catch (err) {
        this.ctx.logger.warn({ err, list: list.address }, "cannot expire held posts");
      }
    }
  }

  /** routes found for the log bindings, used again by handle */
  private readonly routes = new WeakMap<Entry, Route>();

  /** The list and role of an entry's address; throws when no list has it. */
  private route(entry: Entry): Route {
    const known = this.routes.get(entry);
    if (known) return known;
    const to = entry.meta.to ?? entry.meta.recipients[0] ?? "";
    const route = routeRecipient(to, this.ctx.settings().lists);
    // the list may have been removed since the message was queued: keep it (shunt) for the operator
    if (!route) throw new UnknownAddressError(to, `no list has the address ${to} (any more)`);
    this.routes.set(entry, route);
    return route;
  }

  bindings(entry: Entry): Record<string, unknown> {
    const route = this.route(entry);
    return { list: route.list.address, role: route.role };
  }

  async handle(entry: Entry, l: Logger): Promise<HandleResult> {
    const route = this.route(entry);
    switch (route.role) {
      case "post":
        return this.post(entry, route.list, l);
      case "request":
      case "join":
      case "leave":
        return this.pass(entry, "command", route, l);
      case "bounces":
        return this.pass(entry, "bounce", route, l);
      case "owner":
        return this.toOwners(entry, route.list, l);
    }
  }

  private async pass(entry: Entry, queue: "command" | "bounce", route: Route, log: Logger): Promise<void> {
    const extra = {
      ...(entry.meta.extra ?? {}),
      ...(route.verpMember ? { verpMember: route.verpMember } : {}),
    };
    await (
      await this.ctx.queues.get(queue)
    ).enqueueMany([
      {
        message: entry.message,
        meta: { ...entry.meta, list: route.list.address, kind: route.role, extra },
        id: entry.id,
        notBefore: entry.time,
      },
    ]);
    log.info({ to: queue }, "routed");
  }

  private async toOwners(entry: Entry, list: ListConfig, log: Logger): Promise<void> {
    const outgoing = await this.ctx.queues.get("outgoing");
    await outgoing.enqueueMany([
      {
        message: entry.message,
        meta: {
          sender: bouncesAddress(list),
          recipients: [...list.owners],
          list: list.address,
          kind: "owner",
          received: entry.meta.received,
        },
        id: derivedId(entry.id, 0),
        notBefore: entry.time,
      },
    ]);
    log.info({ owners: list.owners.length }, "owner mail forwarded");
  }

  private async post(entry: Entry, list: ListConfig, log: Logger): Promise<void> {
    const { config } = this.ctx.settings();
    const state = await this.states(config.state).read(list.address);
    const approved = entry.meta.extra?.["approved"] === true;
    const sender = entry.meta.sender;
    const verdict = approved
      ? ({
          action: "accept",
          reason: "approved by a moderator",
          check: "poster",
          notify: false,
          poster: sender,
        } as const)
      : screenPost(entry.message, sender, list, (a) => isMember(list, state, a));
    log.info(
      { action: verdict.action, check: verdict.check, reason: verdict.reason, sender },
      "post checked",
    );
    const rawSubject = getHeader(entry.message, "subject");
    const post = {
      poster: verdict.poster || sender,
      // the Subject only goes into notices and the held record: its start is enough (caps before cleaning)
      ...(rawSubject !== undefined
        ? { subject: decodeHeaderText(rawSubject.slice(0, SUBJECT_SCAN_CHARS)) }
        : {}),
      ...withMessageId(messageId(entry.message)),
    };
    switch (verdict.action) {
      case "discard":
        return;
      case "reject":
        if (verdict.notify) {
          const n =
            verdict.check === "size"
              ? rejectedForSize(list, { ...post, size: entry.message.length })
              : rejectedNonmember(list, post);
          await queueNotice(this.ctx.queues, list.address, n, { entry, index: 0 });
        }
        return;
      case "hold": {
        const held = new HeldStore(config.state, list.address);
        const id = await held.hold(
          entry.message,
          {
            sender,
            reason: verdict.reason,
            ...(verdict.poster ? { from: verdict.poster } : {}),
            ...(post.subject !== undefined ? { subject: post.subject } : {}),
            received: entry.meta.received,
          },
          Date.now(),
          heldIdFor(entry.id),
        );
        await queueNotice(
          this.ctx.queues,
          list.address,
          heldForModeration(list, { ...post, id, reason: verdict.reason, size: entry.message.length }),
          { entry, index: 0 },
        );
        log.info({ held: id }, "post held for moderation");
        return;
      }
      case "accept":
        break;
    }
    const decorated = decorate(
      entry.message,
      list,
      list.archive_url !== undefined ? { archiveUrl: list.archive_url } : {},
    );
    const recipients = enabledRecipients(list, state);
    const items: { message: Buffer; meta: NewEntryMeta; id: string; notBefore: number }[] = [];
    const base = { list: list.address, kind: "post", received: entry.meta.received };
    const batches = list.verp
      ? recipients.map((r) => ({ sender: verpAddress(list, r), recipients: [r] }))
      : chunk(recipients, config.smtp.max_recipients).map((rs) => ({
          sender: bouncesAddress(list),
          recipients: rs,
        }));
    // ids and times derived from the incoming entry: re-running a crashed fan-out rewrites the same
    // files instead of adding copies
    batches.forEach((b, i) =>
      items.push({
        message: decorated,
        meta: { ...base, ...b },
        id: derivedId(entry.id, i + 1),
        notBefore: entry.time,
      }),
    );
    if (items.length) await (await this.ctx.queues.get("outgoing")).enqueueMany(items);
    if (list.archive)
      await (
        await this.ctx.queues.get("archive")
      ).enqueueMany([
        {
          message: decorated,
          meta: { ...base, sender, recipients: [] },
          id: derivedId(entry.id, 0),
          notBefore: entry.time,
        },
      ]);
    log.info({ recipients: recipients.length, transactions: items.length }, "post accepted and fanned out");
  }
}

function withMessageId(id: string | undefined): { messageId?: string } {
  return id === undefined ? {} : { messageId: id };
}

function chunk<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** A stable id for the i-th successor of an entry. */
function derivedId(id: string, i: number): string {
  return createHash("sha1").update(`${id}:${i}`).digest("hex");
}
