/**
 * The arithmetic of cluster mode, without any I/O: each live node's share of the slices (in
 * proportion to its weight), which slices a node gives up or tries to take, and how a node's slices
 * are split among the workers of one runner.
 *
 * Every node computes the same shares from the same registry, so no coordinator is needed: a node
 * above its share releases its extras, a node below it claims slices nobody holds. Which slice a node
 * prefers is a rendezvous hash of (node, slice): nodes claiming at the same moment mostly go for
 * different slices, and a node keeps the same slices across restarts as far as the shares allow.
 */
import { createHash } from "node:crypto";

export interface NodeView {
  readonly name: string;
  readonly weight: number;
  /** the slices this node holds (or is about to), as its registry record says */
  readonly slices: readonly number[];
}

/**
 * How many of `count` slices each node should hold: proportional to the weights, rounded by largest
 * remainder (ties to the larger weight, then the name) so that the shares always add up to `count`.
 */
export function shares(
  nodes: readonly Pick<NodeView, "name" | "weight">[],
  count: number,
): Map<string, number> {
  const out = new Map<string, number>();
  const total = nodes.reduce((s, n) => s + n.weight, 0);
  if (nodes.length === 0 || !(total > 0)) return out;
  const exact = nodes.map((n) => ({ n, q: (count * n.weight) / total }));
  let left = count;
  for (const e of exact) {
    const whole = Math.floor(e.q + 1e-9);
    out.set(e.n.name, whole);
    left -= whole;
  }
  const byRemainder = [...exact].sort(
    (a, b) =>
      b.q - Math.floor(b.q + 1e-9) - (a.q - Math.floor(a.q + 1e-9)) ||
      b.n.weight - a.n.weight ||
      (a.n.name < b.n.name ? -1 : a.n.name > b.n.name ? 1 : 0),
  );
  for (let i = 0; left > 0 && byRemainder.length > 0; i = (i + 1) % byRemainder.length, left--) {
    const name = (byRemainder[i] as { n: { name: string } }).n.name;
    out.set(name, (out.get(name) ?? 0) + 1);
  }
  return out;
}

/** A node's liking for a slice (rendezvous hashing): higher is preferred. */
export function preference(node: string, slice: number): number {
  return createHash("sha1").update(`${node}\0${slice}`).digest().readUInt32BE(0);
}

export interface BalanceInput {
  /** this node */
  readonly me: string;
  /** every live node, this one included (its `slices` are what it holds now) */
  readonly nodes: readonly NodeView[];
  /** the cluster's slice count */
  readonly count: number;
}

export interface BalanceStep {
  /** this node's share */
  readonly share: number;
  /** slices to give up (least preferred first), when above the share */
  readonly release: number[];
  /** slices to try, most preferred first, when below the share: none of them is held by a live node */
  readonly claim: number[];
  /** how many of `claim` to take */
  readonly want: number;
}

/** What this node should do now to move towards its share. */
export function balance(input: BalanceInput): BalanceStep {
  const { me, nodes, count } = input;
  const share = shares(nodes, count).get(me) ?? 0;
  const mine = nodes.find((n) => n.name === me)?.slices ?? [];
  const byPref = (a: number, b: number): number => preference(me, b) - preference(me, a) || a - b;
  if (mine.length > share) {
    const release = [...mine].sort(byPref).slice(share).reverse();
    return { share, release, claim: [], want: 0 };
  }
  if (mine.length === share) return { share, release: [], claim: [], want: 0 };
  const taken = new Set<number>();
  for (const n of nodes) for (const k of n.slices) taken.add(k);
  const claim: number[] = [];
  for (let k = 0; k < count; k++) if (!taken.has(k)) claim.push(k);
  claim.sort(byPref);
  return { share, release: [], claim, want: share - mine.length };
}

/**
 * Split a node's slices among `instances` workers of one runner: contiguous runs of the sorted
 * slices, sizes differing by one at most. Fewer slices than instances gives fewer (one-slice) groups.
 */
export function splitSlices(slices: readonly number[], instances: number): number[][] {
  const sorted = [...new Set(slices)].sort((a, b) => a - b);
  const n = Math.max(1, Math.min(instances, sorted.length));
  const groups: number[][] = [];
  for (let i = 0; i < n; i++) {
    const from = Math.floor((i * sorted.length) / n);
    const to = Math.floor(((i + 1) * sorted.length) / n);
    if (to > from) groups.push(sorted.slice(from, to));
  }
  return groups;
}
