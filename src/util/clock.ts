/**
 * The machine's monotonic clock (CLOCK_MONOTONIC on Linux), in ms. Unlike `performance.now()`, whose
 * origin is each process's start, it is the same clock in every process of one machine, so a master
 * can hand its workers a deadline on it; unlike `Date.now()` it never jumps with NTP or an operator.
 * It is never compared across machines.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}
