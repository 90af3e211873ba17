/**
 * Slices of the 160-bit sha1 space. An entry with sha1 h is in slice K of N exactly when
 * floor(h * N / 2^160) = K; weighted slices split the space in proportion to the weights, in order.
 * Bounds are kept as 40-digit lowercase hex so that membership is a string comparison on the name,
 * without BigInt work per file.
 *
 * A slice set (several slices of the same N, as a cluster node's worker serves them) is a Slice with
 * `parts`: its bounds span the parts (a quick first test) and an entry is in it when it is in one of
 * them. Everything that takes a Slice (Switchboard, scanner, the runner loop's wake filter) thus
 * serves a set unchanged.
 */
const SPACE = 1n << 160n;
const HEX40_RE = /^[0-9a-f]{40}$/;

export interface Slice {
  /** K: this slice's index */
  readonly index: number;
  /** N: how many slices */
  readonly count: number;
  /** the weights, when the split is weighted */
  readonly weights?: readonly number[];
  /** inclusive lower bound, 40 hex digits */
  readonly lo: string;
  /** exclusive upper bound, 40 hex digits; null for the top of the space */
  readonly hi: string | null;
  /**
   * A slice set: the slices (of `count`, unweighted, ascending, at least two) it is made of. `index`
   * is then the lowest one's and `lo`/`hi` span them all. Absent for a single slice.
   */
  readonly parts?: readonly Slice[];
}

/** A Slice made of several slices of the same count (see `makeSliceSet`). */
export type SliceSet = Slice & { readonly parts: readonly Slice[] };

function hex40(n: bigint): string {
  return n.toString(16).padStart(40, "0");
}

/** ceil(a / b) for non-negative BigInts */
function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/**
 * The smallest h with floor(h * N / 2^160) >= K is ceil(K * 2^160 / N); for weights the cumulative
 * fraction C_K / W takes the place of K / N. Weights are scaled to integers (6 decimal places).
 */
export function makeSlice(index: number, count: number, weights?: readonly number[]): Slice {
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`slice count must be a whole number >= 1, not ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count)
    throw new RangeError(`slice index must satisfy 0 <= K < ${count}, not ${index}`);
  let lower: bigint;
  let upper: bigint;
  if (weights) {
    if (weights.length !== count) throw new RangeError(`${weights.length} weights given for ${count} slices`);
    if (weights.some((w) => !(w > 0) || !Number.isFinite(w)))
      throw new RangeError("weights must be positive numbers");
    const ints = weights.map((w) => BigInt(Math.round(w * 1e6)));
    const total = ints.reduce((a, b) => a + b, 0n);
    const before = ints.slice(0, index).reduce((a, b) => a + b, 0n);
    lower = ceilDiv(before * SPACE, total);
    upper = ceilDiv((before + (ints[index] ?? 0n)) * SPACE, total);
  } else {
    lower = ceilDiv(BigInt(index) * SPACE, BigInt(count));
    upper = ceilDiv(BigInt(index + 1) * SPACE, BigInt(count));
  }
  return {
    index,
    count,
    ...(weights ? { weights: [...weights] } : {}),
    lo: hex40(lower),
    hi: upper >= SPACE ? null : hex40(upper),
  };
}

/** The whole space: slice 0 of 1. */
export const WHOLE: Slice = makeSlice(0, 1);

/** Is this 40-hex-digit lowercase sha1 in the slice (for a set: in one of its slices)? */
export function inSlice(slice: Slice, sha1: string): boolean {
  if (sha1 < slice.lo || (slice.hi !== null && sha1 >= slice.hi)) return false;
  return slice.parts === undefined || slice.parts.some((p) => inSlice(p, sha1));
}

/**
 * Slices `indices` of `count` (equal slices) as one Slice: a single index gives the plain slice, more
 * give a set. Duplicates are an error (a spec naming a slice twice is a typo, not a wish).
 */
export function makeSliceSet(indices: readonly number[], count: number): Slice {
  if (indices.length === 0) throw new RangeError("a slice set needs at least one slice");
  const sorted = [...indices].sort((a, b) => a - b);
  sorted.forEach((k, i) => {
    if (i > 0 && sorted[i - 1] === k) throw new RangeError(`slice ${k} given twice`);
  });
  const parts = sorted.map((k) => makeSlice(k, count));
  const first = parts[0] as Slice;
  if (parts.length === 1) return first;
  const last = parts[parts.length - 1] as Slice;
  return { index: first.index, count, lo: first.lo, hi: last.hi, parts };
}

export function isSliceSet(s: Slice): s is SliceSet {
  return s.parts !== undefined;
}

/** The slice indices a Slice covers: its parts' for a set, else its own. */
export function sliceIndices(s: Slice): number[] {
  return s.parts ? s.parts.map((p) => p.index) : [s.index];
}

/** Which of `count` (optionally weighted) slices holds this sha1: floor(h * N / 2^160) for equal slices. */
export function sliceOf(sha1: string, count: number, weights?: readonly number[]): number {
  if (!HEX40_RE.test(sha1)) throw new RangeError(`not a 40-hex-digit sha1: ${sha1}`);
  if (!weights) return Number((BigInt("0x" + sha1) * BigInt(count)) / SPACE);
  for (let k = 0; k < count; k++) if (inSlice(makeSlice(k, count, weights), sha1)) return k;
  return count - 1;
}

const SET_COMPACT_RE = /^(\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*)\/(\d+)$/;
const SET_LONG_RE = /^\d+\/\d+(?:,\d+\/\d+)+$/;

/**
 * Parse `K/N`, the weighted form `K/N:w0,w1,...` (as the master passes it to an outgoing worker), or
 * a set of slices of one N: `3/16,7/16`, or compactly `3,7/16` and `0-3,7/16` (how a cluster node's
 * master writes it).
 */
export function parseSlice(spec: string): Slice {
  const text = spec.trim();
  const m = /^(\d+)\/(\d+)(?::([0-9.,]+))?$/.exec(text);
  if (m) {
    const weights = m[3] !== undefined ? m[3].split(",").map(Number) : undefined;
    return makeSlice(Number(m[1]), Number(m[2]), weights);
  }
  const compact = SET_COMPACT_RE.exec(text);
  if (compact) {
    const count = Number(compact[2]);
    const indices: number[] = [];
    for (const item of (compact[1] ?? "").split(",")) {
      const [a, b] = item.split("-").map(Number) as [number, number | undefined];
      const to = b ?? a;
      if (to < a || to >= count)
        throw new RangeError(`not a slice range of ${count}: ${item} in ${JSON.stringify(spec)}`);
      for (let k = a; k <= to; k++) indices.push(k);
    }
    return makeSliceSet(indices, count);
  }
  if (SET_LONG_RE.test(text)) {
    const items = text.split(",").map((i) => i.split("/").map(Number) as [number, number]);
    const count = items[0]?.[1] ?? 0;
    if (items.some(([, n]) => n !== count))
      throw new RangeError(`the slices of a set must share one N: ${JSON.stringify(spec)}`);
    return makeSliceSet(
      items.map(([k]) => k),
      count,
    );
  }
  throw new RangeError(
    `not a slice: ${JSON.stringify(spec)} (use K/N, e.g. 0/4, K/N:w0,w1,... for weights, or a set such as 3/16,7/16)`,
  );
}

/** The spec `parseSlice` reads back: `K/N`, `K/N:w0,w1,...`, or for a set the compact `0-3,7/16`. */
export function formatSlice(s: Slice): string {
  if (s.parts) {
    const runs: string[] = [];
    const ks = s.parts.map((p) => p.index);
    for (let i = 0; i < ks.length;) {
      let j = i;
      while (j + 1 < ks.length && (ks[j + 1] as number) === (ks[j] as number) + 1) j++;
      runs.push(j > i ? `${ks[i]}-${ks[j]}` : `${ks[i]}`);
      i = j + 1;
    }
    return `${runs.join(",")}/${s.count}`;
  }
  return `${s.index}/${s.count}${s.weights ? ":" + s.weights.join(",") : ""}`;
}
