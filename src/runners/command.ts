/**
 * The command runner: mail to a list's -request (or -join / -leave) address. Each request gets one
 * reply with the result of each command; join and leave take effect only when confirmed with the
 * token mailed to the address concerned. The member set changes under the list state lock, so the
 * next post and `qrunner members` see it. Robots get no reply (null sender, auto-submitted, bulk,
 * list traffic), and no address gets more than `max_replies_per_hour` messages an hour (replies and
 * confirmation requests alike); a request beyond its sender's budget is ignored. A reply to a
 * held-post notice goes to src/lists/moderation-reply.ts.
 */
import type { Logger } from "pino";
import { noticeDecision } from "../lists/checks.js";
import { messageId } from "../lists/message.js";
import { addMember, enableMember, isMember, removeMember } from "../lists/members.js";
import { commandReply, confirmRequest, helpText } from "../lists/notice-texts.js";
import type { Notice } from "../lists/notices.js";
import { parseRequest, type RequestCommand } from "../lists/request.js";
import type { ListConfig } from "../lists/schema.js";
import { takeReplySlot } from "../lists/replies.js";
import type { ListState } from "../lists/state-shape.js";
import { ListStateStore } from "../lists/state.js";
import { addToken, takeToken } from "../lists/tokens.js";
import { addressProblem, normalizeAddress, routeRecipient } from "../lists/addresses.js";
import type { Entry } from "../queue/types.js";
import type { Handler, HandleResult } from "./base.js";
import type { RunnerContext } from "./context.js";
import { queueNotice } from "../lists/queue-notice.js";
import { handleModerationReply } from "../lists/moderation-reply.js";

export class CommandRunner implements Handler {
  constructor(private readonly ctx: RunnerContext) {}

  async handle(entry: Entry, log: Logger): Promise<HandleResult> {
    const { config, lists } = this.ctx.settings();
    const list = entry.meta.list ? lists.get(entry.meta.list.toLowerCase()) : undefined;
    if (!list)
      throw new Error(`command for a list that does not exist (any more): ${entry.meta.list ?? "none"}`);
    const sender = normalizeAddress(entry.meta.sender);
    const decision = noticeDecision(sender, entry.message);
    if (!decision.allowed) {
      // a robot's mail changes nothing and gets no reply: no loops between auto-responders
      log.info({ sender, reason: decision.reason }, "command mail from a robot ignored");
      return;
    }
    const role = entry.meta.kind === "join" || entry.meta.kind === "leave" ? entry.meta.kind : "request";
    const parsed = await parseRequest(entry.message, role);
    // a reply to a held-post notice: its token in the address (-request+confirm-TOKEN) or the Subject
    const addressToken = routeRecipient(entry.meta.to ?? "", this.ctx.settings().lists)?.confirmToken;
    const token = addressToken ?? parsed.commands.find((c) => c.verb === "confirm")?.args[0];
    if (token !== undefined) {
      const handled = await handleModerationReply(
        { stateDir: config.state, queues: this.ctx.queues, logger: log },
        { list, token, sender, raw: entry.message, origin: entry },
      );
      if (handled !== "other") return;
      // a join/leave token in the address confirms like `confirm TOKEN` in the text
      if (addressToken !== undefined && !parsed.commands.some((c) => c.verb === "confirm"))
        parsed.commands.unshift({ verb: "confirm", args: [addressToken], line: `confirm ${addressToken}` });
    }
    const inReplyTo = messageId(entry.message);
    const store = new ListStateStore(config.state, list.address);
    const now = Date.now();
    // the notices are queued (durably) inside the update, before the new state is written: a crash in
    // between re-runs the request, which rewrites the same notice files instead of losing them
    const sent = await store.update(async (state) => {
      // the reply is reserved first: a request we may not answer is not acted on either, so a flood
      // of requests (a robot loop, a forged sender naming other addresses) cannot make more mail than
      // the sender's budget allows
      if (!takeReplySlot(state, sender, now, list.max_replies_per_hour, log)) return null;
      const out: Notice[] = [];
      const results: { line: string; reply: string }[] = [];
      for (const c of parsed.commands)
        results.push({ line: c.line, reply: this.run(c, list, state, sender, now, out, inReplyTo, log) });
      out.unshift(
        commandReply(list, {
          to: sender,
          results,
          ignored: parsed.ignored,
          ...(inReplyTo ? { inReplyTo } : {}),
        }),
      );
      for (const [index, n] of out.entries())
        await queueNotice(this.ctx.queues, list.address, n, { entry, index });
      return out.length;
    });
    if (sent === null) {
      log.warn({ sender, max: list.max_replies_per_hour }, "reply limit reached; request ignored");
      return;
    }
    log.info({ sender, commands: parsed.commands.map((c) => c.verb), notices: sent }, "commands handled");
  }

  /** One command against the state (inside the lock); returns the reply text, may add notices. */
  private run(
    c: RequestCommand,
    list: ListConfig,
    state: ListState,
    sender: string,
    now: number,
    out: Notice[],
    inReplyTo: string | undefined,
    log: Logger,
  ): string {
    switch (c.verb) {
      case "help":
        return helpText(list);
      case "echo":
        return c.args.join(" ");
      case "join":
      case "leave": {
        const who = normalizeAddress(c.args[0] ?? sender);
        const problem = addressProblem(who);
        if (problem) return `Not done: ${JSON.stringify(who)} is not an address we accept (${problem}).`;
        // a confirmation mailed to one of our own list addresses would come back in as a post (or a
        // command, or a bounce): lists are made members in the list file, never by mail
        const ours = routeRecipient(who, this.ctx.settings().lists);
        if (ours)
          return `Not done: ${who} is an address of the list ${ours.list.address}; a list cannot ${c.verb} by mail.`;
        const member = isMember(list, state, who);
        const disabled = member && state.members[who]?.disabled !== undefined;
        // a disabled member's join is a request to get list mail again, confirmed like any join
        if (c.verb === "join" && member && !disabled) return `${who} is already a member of ${list.address}.`;
        if (c.verb === "leave" && !member) return `${who} is not a member of ${list.address}.`;
        // the confirmation goes to the address concerned, within its budget: the requester's too,
        // or each join in a request would mail the sender once more than the limit allows
        if (!takeReplySlot(state, who, now, list.max_replies_per_hour, log))
          return `Not done: too many messages to ${who} this hour; try again later.`;
        const token = addToken(state, c.verb, who, now, list.confirm_expires, log);
        out.push(
          confirmRequest(list, {
            to: who,
            token,
            action: c.verb,
            ...(who === sender && inReplyTo ? { inReplyTo } : {}),
          }),
        );
        return `A confirmation request was sent to ${who}. Reply to it to ${c.verb} ${list.address}.`;
      }
      case "confirm": {
        const token = c.args[0] ?? "";
        // a held post's token among other commands: acted on only as a reply of its own
        if (Object.hasOwn(state.tokens, token) && state.tokens[token]?.action === "moderate")
          return `Token ${token} is for a held post: reply to the held-post notice, with approve, reject REASON or discard.`;
        const r = takeToken(state, token, now);
        if (!r.ok)
          return r.reason === "expired"
            ? `Token ${token} has expired; nothing was changed. Send the ${r.pending?.action ?? "join"} request again.`
            : `Token ${JSON.stringify(token)} is unknown (mistyped, or already used); nothing was changed.`;
        if (r.pending.action === "moderate") return `Token ${token} is for a held post; nothing was changed.`;
        const { action, address } = r.pending;
        if (action === "join") {
          if (addMember(list, state, address)) return `${address} is now a member of ${list.address}.`;
          if (state.members[normalizeAddress(address)]?.disabled === undefined)
            return `${address} already was a member.`;
          enableMember(state, address);
          return `Delivery of ${list.address} to ${address} is enabled again.`;
        }
        return removeMember(list, state, address)
          ? `${address} has left ${list.address}.`
          : `${address} was not a member.`;
      }
      case "unknown":
        return `Unknown command. Send "help" for the list of commands.`;
    }
  }
}
