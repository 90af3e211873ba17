/**
 * Slices of the 160-bit sha1 space. An entry with sha1 h is in slice K of N exactly when
 * floor(h * N / 2^160) = K; weighted slices split the space in proportion to the weights, in order.
 * Bounds are kept as 40-digit lowercase hex so that membership is a string comparison on the name,
 * without BigInt work per file.
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
}

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
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`slice count must be a whole number >= 1, not ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count)
    throw new RangeError(`slice index must satisfy 0 <= K < ${count}, not ${index}`);
  let lower: bigint;
  let upper: bigint;
  if (weights) {
    if (weights.length !== count) throw new RangeError(`${weights.length} weights given for ${count} slices`);
    if (weights.some((w) => !(w > 0) || !Number.isFinite(w))) throw new RangeError("weights must be positive numbers");
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

/** Is this 40-hex-digit lowercase sha1 in the slice? */
export function inSlice(slice: Slice, sha1: string): boolean {
  return sha1 >= slice.lo && (slice.hi === null || sha1 < slice.hi);
}

/** Which of `count` (optionally weighted) slices holds this sha1: floor(h * N / 2^160) for equal slices. */
export function sliceOf(sha1: string, count: number, weights?: readonly number[]): number {
  if (!HEX40_RE.test(sha1)) throw new RangeError(`not a 40-hex-digit sha1: ${sha1}`);
  if (!weights) return Number((BigInt("0x" + sha1) * BigInt(count)) / SPACE);
  for (let k = 0; k < count; k++) if (inSlice(makeSlice(k, count, weights), sha1)) return k;
  return count - 1;
}

/**
 * Parse `K/N` or the weighted form `K/N:w0,w1,...` (as the master passes it to an outgoing worker).
 */
export function parseSlice(spec: string): Slice {
  const m = /^(\d+)\/(\d+)(?::([0-9.,]+))?$/.exec(spec.trim());
  if (!m) throw new RangeError(`not a slice: ${JSON.stringify(spec)} (use K/N, e.g. 0/4, or K/N:w0,w1,... for weights)`);
  const weights = m[3] !== undefined ? m[3].split(",").map(Number) : undefined;
  return makeSlice(Number(m[1]), Number(m[2]), weights);
}

export function formatSlice(s: Slice): string {
  return `${s.index}/${s.count}${s.weights ? ":" + s.weights.join(",") : ""}`;
}
