/**
 * Which SMTP host a message goes to: host identity, the weighted split of the outgoing hash space
 * (`instances: auto`), and picking a host for a retry or when the preferred one is down.
 */
import { makeSlice, sliceOf } from "../queue/slice.js";
import type { Slice } from "../queue/slice.js";

/** What these helpers need of a host (both `smtp.hosts` and `smtp.fallback` entries qualify). */
export interface HostRef {
  host: string;
  port: number;
  name?: string | undefined;
  weight?: number | undefined;
}

/** The host's identity in logs, status and health records: its `name`, else `host:port`. */
export function hostId(h: HostRef): string {
  return h.name ?? `${h.host}:${h.port}`;
}

/** A host's weight; fallback hosts have none and count as 1. */
export function weightOf(h: HostRef): number {
  return h.weight ?? 1;
}

export interface HostSlice<H extends HostRef> {
  host: H;
  id: string;
  /** the part of the outgoing hash space this host's worker serves */
  slice: Slice;
}

/**
 * `runners.outgoing.instances: auto`: one worker per host, slice K of N sized by the hosts' weights,
 * in config order (pass `formatSlice(s.slice)` as the worker's --slice).
 */
export function autoSlices<H extends HostRef>(hosts: readonly H[]): HostSlice<H>[] {
  if (hosts.length === 0) throw new RangeError("no SMTP hosts configured");
  const weights = hosts.map(weightOf);
  return hosts.map((host, k) => ({ host, id: hostId(host), slice: makeSlice(k, hosts.length, weights) }));
}

/**
 * The host whose weighted share of the hash space holds this entry sha1: how a worker serving
 * equal slices (`instances: N`) still spreads mail over the hosts by weight, the same entry always
 * going to the same host.
 */
export function hostForSha1<H extends HostRef>(hosts: readonly H[], sha1: string): H {
  if (hosts.length === 0) throw new RangeError("no SMTP hosts configured");
  const k = sliceOf(sha1, hosts.length, hosts.map(weightOf));
  return hosts[k] ?? (hosts[0] as H);
}

/**
 * Pick a host at random in proportion to the weights (the backoff runner spreads retries this way).
 * `rnd` returns a number in [0, 1), as Math.random does. Undefined when `hosts` is empty.
 */
export function pickWeighted<H extends HostRef>(
  hosts: readonly H[],
  rnd: () => number = Math.random,
): H | undefined {
  if (hosts.length === 0) return undefined;
  const total = hosts.reduce((sum, h) => sum + weightOf(h), 0);
  let x = Math.min(Math.max(rnd(), 0), 1 - Number.EPSILON) * total;
  for (const h of hosts) {
    x -= weightOf(h);
    if (x < 0) return h;
  }
  return hosts[hosts.length - 1];
}

export interface RouteOptions<H extends HostRef> {
  /** the configured hosts, in order */
  hosts: readonly H[];
  /** `smtp.fallback`: used only while every host above is unavailable */
  fallback: readonly H[];
  /** may we send through this host now? (up, or down with its probe due) */
  available: (id: string) => boolean;
  /** the host this message would normally use (its slice's host); default: a weighted pick */
  preferred?: H;
  rnd?: () => number;
}

/**
 * The host to try now: the preferred host when available, else a weighted pick among the other
 * available hosts, else a weighted pick among the available fallbacks; undefined when none is
 * available (the message waits for the next probe or retry).
 */
export function routeHost<H extends HostRef>(opts: RouteOptions<H>): H | undefined {
  const rnd = opts.rnd ?? Math.random;
  if (opts.preferred && opts.available(hostId(opts.preferred))) return opts.preferred;
  const up = opts.hosts.filter((h) => opts.available(hostId(h)));
  if (up.length > 0) return pickWeighted(up, rnd);
  return pickWeighted(
    opts.fallback.filter((h) => opts.available(hostId(h))),
    rnd,
  );
}
