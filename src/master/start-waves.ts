/**
 * The order of a cold start. The runners on the mail path are spawned first, and the others once
 * these are ready and idle (their heartbeat shows nothing due and nothing in hand), or gone, or after
 * FIRST_WAVE_MAX_MS; so that on a small machine the mail queued while the daemon was stopped is
 * delivered without waiting for every other worker to load (a cold start spawns 6 or more node
 * processes at once; on 2 cores each of them then takes several times as long to be ready).
 */
import type { Slot } from "./slot.js";

const FIRST_WAVE = new Set(["incoming", "outgoing"]);
/** the longest the other workers wait for the mail path's workers at start, ms */
const FIRST_WAVE_MAX_MS = 1000;

/** What the waves need of the supervisor. */
export interface WaveHost {
  /** the supervisor's slots now (a config edit may have replaced some) */
  slots(): readonly Slot[];
  spawn(slot: Slot): void;
  stopping(): boolean;
}

export class StartWaves {
  /** the workers spawned once the mail path's are ready and idle; null once they are (or none wait) */
  private second: { slots: Slot[]; timer: NodeJS.Timeout } | null = null;

  constructor(private readonly host: WaveHost) {}

  /** Spawn the mail path's workers now, and the rest once they are done (see above). */
  start(slots: readonly Slot[]): void {
    const first = slots.filter((s) => FIRST_WAVE.has(s.spec.runner));
    const later = slots.filter((s) => !first.includes(s));
    for (const slot of first) this.host.spawn(slot);
    if (first.length && later.length) {
      const timer = setTimeout(() => this.startSecond(), FIRST_WAVE_MAX_MS);
      this.second = { slots: later, timer };
    } else for (const slot of later) this.host.spawn(slot);
  }

  /** A first-wave worker sent a heartbeat or exited: start the second wave if the first is done. */
  progress(): void {
    if (this.second && this.firstWaveDone()) this.startSecond();
  }

  /** Stopping: the second wave is never started. */
  cancel(): void {
    if (this.second) clearTimeout(this.second.timer);
    this.second = null;
  }

  /** The workers held back at start, once the mail path's are idle or gone (or the wait is over). */
  private startSecond(): void {
    const wave = this.second;
    if (!wave) return;
    this.second = null;
    clearTimeout(wave.timer);
    if (this.host.stopping()) return;
    // a worker a config edit, a kill or a stop dealt with meanwhile is left as it is
    const slots = this.host.slots();
    for (const slot of wave.slots)
      if (slots.includes(slot) && !slot.child && slot.timer === null && slot.intent === "run")
        this.host.spawn(slot);
  }

  /** Whether the workers spawned first at start are all done with the mail at hand (or gone). */
  private firstWaveDone(): boolean {
    return this.host.slots().every((s) => {
      if (!FIRST_WAVE.has(s.spec.runner) || s.child === null) return true;
      if (s.state === "ready") return s.hb !== null && s.hb.due === 0 && s.hb.inHand === 0;
      return s.state !== "starting";
    });
  }
}
