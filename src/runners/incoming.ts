/**
 * The incoming runner: routes each entry by the envelope recipient it arrived for. A post goes
 * through the list's checks (loop, size, poster), gets the list headers, and fans out into `outgoing`
 * entries for the enabled members (split by smtp.max_recipients, or one per member with VERP) plus
 * one `archive` entry; commands go to `command`, bounces to `bounce`, owner mail to the owners. An
 * LMTP entry may carry several recipients of one list: each of their roles is handled once (partsOf).
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { bouncesAddress, routeRecipient, type Route } from "../lists/addresses.js";
import { screenPost } from "../lists/checks.js";
import { findApproval, stripApprovedHeaders } from "../lists/approved.js";
import { verifyListPassword } from "../lists/passwords.js";
import { decorate, SUBJECT_SCAN_CHARS } from "../lists/headers.js";
import { HeldStore } from "../lists/held.js";
import { heldIdFor } from "../lists/held-ids.js";
import { decodeHeaderText } from "../lists/header-text.js";
import { getHeader, messageId } from "../lists/message.js";
import { enabledRecipients, isMember } from "../lists/members.js";
import type { ListConfig } from "../lists/schema.js";
import { ListStateCache } from "../lists/state-cache.js";
import { ListStateStore } from "../lists/state.js";
import { takeRejectionSlot } from "../lists/replies.js";
import { addModerationToken } from "../lists/tokens.js";
import { signedVerpAddress, VerpKeys } from "../lists/verp.js";
import type { Entry, NewEntryMeta } from "../queue/types.js";
import { UnknownAddressError } from "../util/errors.js";
import type { Handler, HandleResult } from "./base.js";
import type { RunnerContext } from "./context.js";
import { heldForModeration, rejectedForSize, rejectedNonmember } from "../lists/notice-texts.js";
import { queueNotice } from "../lists/queue-notice.js";

/** One role of an entry's recipients, with the entry as that role sees it (see partsOf). */
interface Part {
  entry: Entry;
  route: Route;
}

/** How often held posts are checked for expiry. */
const EXPIRE_EVERY_MS = 10 * 60_000;

export class IncomingRunner implements Handler {
  private nextExpiry = 0;

  private stateCache: ListStateCache | null = null;

  private readonly verpKeys = new VerpKeys();

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

  /** parts found for the log bindings, used again by handle */
  private readonly parts = new WeakMap<Entry, readonly Part[]>();

  /**
   * The work an entry asks for. An entry from `inject` (and every entry written before LMTP grouped
   * them) names one address, `to`. An LMTP entry holds the message once for all the recipients of one
   * list in one transaction (`recipients`, issue 15): each distinct role among them is one part,
   * handled as if it had come alone, so a post to `dev@` and `dev-owner@` is fanned out once and
   * forwarded to the owners once, and a thousand recipients of one role store one successor, not a
   * thousand. Throws when an address names no list (the entry is shunted whole, for the operator).
   */
  private partsOf(entry: Entry): readonly Part[] {
    const known = this.parts.get(entry);
    if (known) return known;
    const lists = this.ctx.settings().lists;
    const routeOf = (to: string): Route => {
      const route = routeRecipient(to, lists);
      // the list may have been removed since the message was queued: keep it (shunt) for the operator
      if (!route) throw new UnknownAddressError(to, `no list has the address ${to} (any more)`);
      return route;
    };
    let parts: Part[];
    if (entry.meta.recipients.length <= 1) {
      parts = [{ entry, route: routeOf(entry.meta.to ?? entry.meta.recipients[0] ?? "") }];
    } else {
      const byRole = new Map<string, { to: string; route: Route }>();
      for (const to of entry.meta.recipients) {
        const route = routeOf(to);
        const key = `${route.list.address}\n${route.role}`;
        const had = byRole.get(key);
        if (!had) byRole.set(key, { to, route });
        // VERP addresses of different members in one message: it names no one member, and the
        // bounce runner reads the DSN instead
        else if (had.route.verpMember !== route.verpMember)
          byRole.set(key, { to: had.to, route: { list: route.list, role: route.role } });
      }
      parts = [...byRole].map(([key, { to, route }]) => ({
        route,
        entry: { ...entry, id: partId(entry.id, key), meta: { ...entry.meta, to, recipients: [to] } },
      }));
    }
    this.parts.set(entry, parts);
    return parts;
  }

  bindings(entry: Entry): Record<string, unknown> {
    const parts = this.partsOf(entry);
    const first = parts[0]?.route;
    return parts.length === 1 || !first
      ? { list: first?.list.address, role: first?.role }
      : { list: first.list.address, roles: parts.map((p) => p.route.role) };
  }

  async handle(entry: Entry, l: Logger): Promise<HandleResult> {
    for (const { entry: part, route } of this.partsOf(entry)) await this.handlePart(part, route, l);
  }

  private async handlePart(entry: Entry, route: Route, l: Logger): Promise<void> {
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
      ...(route.verpTag !== undefined ? { verpTag: route.verpTag } : {}),
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
    // `Approved: PASSWORD` (src/lists/approved.ts): the header field never goes out, and the list's
    // moderator password skips the poster check (a wrong one is held as usual, the poster not told)
    const approval = approved ? null : findApproval(entry.message);
    const byPassword = approval !== null && (await verifyListPassword(list, approval.password));
    const message = byPassword ? approval.stripped : stripApprovedHeaders(entry.message);
    const sender = entry.meta.sender;
    const screened = approved
      ? ({
          action: "accept",
          reason: "approved by a moderator",
          check: "poster",
          notify: false,
          poster: sender,
        } as const)
      : screenPost(message, sender, list, (a) => isMember(list, state, a));
    const verdict =
      byPassword && screened.check === "poster" && sender !== ""
        ? ({
            ...screened,
            action: "accept",
            reason: "Approved: with the moderator password",
            notify: false,
          } as const)
        : screened;
    log.info(
      { action: verdict.action, check: verdict.check, reason: verdict.reason, sender },
      "post checked",
    );
    const rawSubject = getHeader(message, "subject");
    const post = {
      poster: verdict.poster || sender,
      // the Subject only goes into notices and the held record: its start is enough (caps before cleaning)
      ...(rawSubject !== undefined
        ? { subject: decodeHeaderText(rawSubject.slice(0, SUBJECT_SCAN_CHARS)) }
        : {}),
      ...withMessageId(messageId(message)),
    };
    switch (verdict.action) {
      case "discard":
        return;
      case "reject":
        if (verdict.notify) {
          const n =
            verdict.check === "size"
              ? rejectedForSize(list, { ...post, size: message.length })
              : rejectedNonmember(list, post);
          // backscatter: senders of rejected posts are often forged, so rejection notices share the
          // poster's reply budget and a cap per list and hour; the notice is queued inside the update
          const limits = { maxPerHour: list.max_rejections_per_hour, perAddress: list.max_replies_per_hour };
          const sent = await new ListStateStore(config.state, list.address).update(async (s) => {
            if (!takeRejectionSlot(s, post.poster, Date.now(), limits, log)) return false;
            await queueNotice(this.ctx.queues, list.address, n, { entry, index: 0 });
            return true;
          });
          if (!sent) log.info({ poster: post.poster }, "rejection notice held back (rate limit)");
        }
        return;
      case "hold": {
        const held = new HeldStore(config.state, list.address);
        const id = await held.hold(
          message,
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
        // the notice can be answered by mail: a token bound to this post (src/lists/moderation-reply.ts)
        const token = await new ListStateStore(config.state, list.address).update((s) =>
          addModerationToken(s, id, Date.now(), list.confirm_expires, log),
        );
        await queueNotice(
          this.ctx.queues,
          list.address,
          heldForModeration(list, { ...post, id, reason: verdict.reason, size: message.length, token }),
          { entry, index: 0 },
        );
        log.info({ held: id }, "post held for moderation");
        return;
      }
      case "accept":
        break;
    }
    const decorated = decorate(
      message,
      list,
      list.archive_url !== undefined ? { archiveUrl: list.archive_url } : {},
    );
    const recipients = enabledRecipients(list, state);
    const items: { message: Buffer; meta: NewEntryMeta; id: string; notBefore: number }[] = [];
    const base = { list: list.address, kind: "post", received: entry.meta.received };
    // signed VERP (src/lists/verp.ts): only a bounce to an address we sent from can score its member
    const now = Date.now();
    const key = list.verp ? this.verpKeys.get(config.state) : undefined;
    const batches = key
      ? recipients.map((r) => ({ sender: signedVerpAddress(list, r, key, now), recipients: [r] }))
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

/** The id one part of a grouped entry is handled under: stable, so that a re-run rewrites the same files. */
function partId(id: string, key: string): string {
  return createHash("sha1").update(`${id}:part:${key}`).digest("hex");
}

/** A stable id for the i-th successor of an entry. */
function derivedId(id: string, i: number): string {
  return createHash("sha1").update(`${id}:${i}`).digest("hex");
}
