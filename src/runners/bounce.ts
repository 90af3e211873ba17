/**
 * The bounce runner: mail to a list's -bounces address (a signed VERP address names the member
 * directly; otherwise the bounce detector reads the DSN or the MTA's text), and bounce events that
 * outgoing synthesised from 5xx replies. Each bounce scores the member (at most once a day); at the
 * list's threshold the member is disabled and the member and the owners get one notice each, or, with
 * `verp_probes`, the member gets a probe first and only the probe's bounce disables.
 *
 * Not scored, only counted and logged: automatic replies and success reports (dropped), feedback-loop
 * complaints (`complaints`), VERP bounces whose tag does not verify (`forgedBounces`: forged, stale,
 * or queued before signing). A delay (`Action: delayed`) scores at most as a temporary bounce and never
 * disables. Unrecognised bounces go to the owners, the site owner or nowhere (bounce-unrecognised.ts);
 * none is kept. With `idle_only`, it works only while the machine is idle and the incoming and
 * outgoing queues are empty: bounces wait, never lost.
 */
import os from "node:os";
import type { Logger } from "pino";
import { normalizeAddress } from "../lists/addresses.js";
import {
  applyBounce,
  policyFromList,
  type BouncePolicy,
  type MemberBounceState,
} from "../lists/bounces/score.js";
import { isMember } from "../lists/members.js";
import { bounceDisabledMember, bounceDisabledOwners } from "../lists/notice-texts.js";
import type { Notice } from "../lists/notices.js";
import { bounceProbe } from "../lists/notices-bounces.js";
import { endProbe, expireProbes, pendingProbe, probesExpired, startProbe } from "../lists/probes.js";
import type { ListConfig } from "../lists/schema.js";
import type { ListState } from "../lists/state-shape.js";
import { ListStateStore } from "../lists/state.js";
import { signedVerpAddress, VerpKeys } from "../lists/verp.js";
import { hasEntries } from "../queue/inspect.js";
import type { Entry } from "../queue/types.js";
import type { Handler, HandleResult } from "./base.js";
import { readFindings, type Finding } from "./bounce-findings.js";
import { flushDigest } from "./bounce-unrecognised.js";
import type { RunnerContext } from "./context.js";
import { queueNotice } from "../lists/queue-notice.js";

/** How often slice 0 sends due digests and expires probes when no bounce comes to do it. */
const CHORES_EVERY_MS = 60_000;

export class BounceRunner implements Handler {
  private readonly verpKeys = new VerpKeys();
  private nextChores = 0;

  constructor(private readonly ctx: RunnerContext) {}

  async waitReason(): Promise<string | null> {
    const { config } = this.ctx.settings();
    const { idle_only, max_loadavg } = config.runners.bounce;
    if (!idle_only) return null;
    const load = os.loadavg()[0] ?? 0;
    if (load >= max_loadavg) return `waiting for idle: load average ${load.toFixed(2)} >= ${max_loadavg}`;
    for (const q of ["incoming", "outgoing"])
      if (await hasEntries(config.qfiles, q)) return `waiting for idle: the ${q} queue is not empty`;
    return null;
  }

  /** Digests whose hour is over and expired probes, for lists no bounce has come to (slice 0 only). */
  async tick(): Promise<void> {
    const now = Date.now();
    if (this.ctx.slice.index !== 0 || now < this.nextChores) return;
    this.nextChores = now + CHORES_EVERY_MS;
    const { config, lists } = this.ctx.settings();
    for (const list of lists.values()) {
      const log = this.ctx.logger.child({ list: list.address });
      try {
        await flushDigest(this.ctx.queues, config, list, log, now);
        const store = new ListStateStore(config.state, list.address);
        if (probesExpired(await store.read(), now, list.bounce.probe_expires))
          await store.update((s) => this.expire(s, list, now, log));
      } catch (err) {
        log.warn({ err }, "cannot do the bounce chores of a list");
      }
    }
  }

  async handle(entry: Entry, log: Logger): Promise<HandleResult> {
    const { lists } = this.ctx.settings();
    const list = entry.meta.list ? lists.get(entry.meta.list.toLowerCase()) : undefined;
    if (!list)
      throw new Error(`bounce for a list that does not exist (any more): ${entry.meta.list ?? "none"}`);
    const findings = await readFindings(this.ctx, this.verpKeys, entry, list, log);
    if (findings.length > 0) await this.score(entry, list, findings, log);
  }

  private async score(
    entry: Entry,
    list: ListConfig,
    findings: readonly Finding[],
    log: Logger,
  ): Promise<void> {
    const { config } = this.ctx.settings();
    const policy = policyFromList(list.bounce);
    const now = Date.now();
    // notices are queued inside the update, before the new scores are written: a crash in between
    // re-runs the bounce, which rewrites the same notice files instead of losing them
    await new ListStateStore(config.state, list.address).update(async (state) => {
      this.expire(state, list, now, log);
      const out: Notice[] = [];
      for (const f of findings) {
        const addr = normalizeAddress(f.address);
        if (!isMember(list, state, addr)) {
          log.info({ address: addr, kind: f.kind }, "bounce for a non-member ignored");
          continue;
        }
        const before = state.members[addr] ?? { score: 0 };
        if (f.probe) {
          this.probeBounced(list, state, addr, before, f, now, out, log);
          continue;
        }
        const r = this.apply(before, f, now, policy, log, addr);
        let disable = r.disabledNow;
        if (disable && list.verp_probes) {
          // Mailman 3's probe: not disabled yet; only the probe's bounce disables
          disable = false;
          delete r.state.disabled;
          if (pendingProbe(state, addr) === undefined) {
            startProbe(state, addr, now);
            const sender = signedVerpAddress(list, addr, this.verpKeys.get(config.state), now, "probe");
            out.push(bounceProbe(list, addr, sender, r.state.score));
            log.warn({ member: addr, score: r.state.score }, "bounce threshold reached; probe sent");
          }
        }
        state.members[addr] = r.state;
        log.info(
          {
            member: addr,
            kind: f.kind,
            counted: r.counted,
            score: r.state.score,
            reason: f.reason ?? f.diagnostic,
          },
          "bounce scored",
        );
        if (disable) {
          const b = { member: addr, score: r.state.score, reason: f.diagnostic };
          out.push(bounceDisabledMember(list, b), bounceDisabledOwners(list, b));
          log.warn({ member: addr, score: r.state.score }, "member disabled after bounces");
        }
      }
      for (const [index, n] of out.entries())
        await queueNotice(this.ctx.queues, list.address, n, { entry, index });
    });
  }

  /** Score one bounce; a delay never reaches the threshold. */
  private apply(
    before: MemberBounceState,
    f: Finding,
    now: number,
    policy: BouncePolicy,
    log: Logger,
    addr: string,
  ): { state: MemberBounceState; counted: boolean; disabledNow: boolean } {
    const r = applyBounce(before, { kind: f.kind, at: now }, policy, f.reason);
    if (f.reason === "delayed" && r.counted && r.state.score >= policy.threshold) {
      log.info({ member: addr, score: before.score }, "a delay does not take a member to the threshold");
      return { state: { ...before }, counted: false, disabledNow: false };
    }
    return r;
  }

  /** The bounce of a probe: disables the member when the probe is still pending and it failed for good. */
  private probeBounced(
    list: ListConfig,
    state: ListState,
    addr: string,
    before: MemberBounceState,
    f: Finding,
    now: number,
    out: Notice[],
    log: Logger,
  ): void {
    if (pendingProbe(state, addr) === undefined) {
      log.info({ member: addr }, "probe bounce with no pending probe (expired or answered); ignored");
      return;
    }
    if (f.kind === "temporary") {
      log.info(
        { member: addr, reason: f.reason },
        "probe delayed or soft-bounced; waiting for a hard bounce",
      );
      return;
    }
    endProbe(state, addr);
    if (before.disabled !== undefined) return;
    state.members[addr] = { ...before, disabled: { reason: "bounces", at: now } };
    const b = { member: addr, score: before.score, reason: f.diagnostic };
    out.push(bounceDisabledMember(list, b), bounceDisabledOwners(list, b));
    log.warn({ member: addr, score: before.score }, "member disabled: the bounce probe bounced");
  }

  /** Expired probes: their members' scores start again (the probe was delivered). */
  private expire(state: ListState, list: ListConfig, now: number, log: Logger): void {
    for (const member of expireProbes(state, now, list.bounce.probe_expires))
      log.info({ member }, "bounce probe did not bounce; score reset");
  }
}
