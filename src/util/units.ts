/**
 * Durations (`500ms`, `10s`, `5m`, `1h`, `5d`, `2w`) and sizes (`512`, `10KB`, `1MB`, `1GiB`) as used in config
 * files, and the one way durations are written back for people (formatDuration).
 */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$/;

/** Parse a duration to milliseconds; a bare number means seconds. Returns undefined when malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const m = DURATION_RE.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return Math.round(n * (DURATION_UNITS[m[2] ?? "s"] ?? 1000));
}

/**
 * How a duration is written for people; each style is the documented output of some command:
 * - `short` (status, logs, errors): `0ms`, `12.4s`, `5.2m`, `2.1h`, `3d`, one decimal, the largest unit
 *   reached;
 * - `whole` (`queue list`'s AGE): whole units only, a unit taken once two of it have passed (`119s`,
 *   `77m`, `2h`, `4d`) so that a value never rounds away half its size; below 0 is `0s`;
 * - `seconds` (the demo's timeline and summary): always seconds with one decimal (`15.0s`, `93.4s`),
 *   so the stamps of one run line up and compare.
 */
export type DurationStyle = "short" | "whole" | "seconds";

const SPOKEN_UNITS = [
  ["d", 86_400],
  ["h", 3600],
  ["m", 60],
  ["s", 1],
] as const;

/** `ms` as text in the given style (see DurationStyle). */
export function formatDuration(ms: number, style: DurationStyle = "short"): string {
  if (style === "seconds") return `${(ms / 1000).toFixed(1)}s`;
  if (style === "short" && ms < 1000) return `${Math.round(ms)}ms`;
  const s = style === "whole" ? Math.max(0, Math.round(ms / 1000)) : ms / 1000;
  const reached = style === "whole" ? 2 : 1;
  const [unit, size] = SPOKEN_UNITS.find(([, n]) => s >= n * reached) ?? ["s", 1];
  return style === "whole" ? `${Math.round(s / size)}${unit}` : `${+(s / size).toFixed(1)}${unit}`;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
};

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i;

/** Parse a size to bytes; a bare number means bytes. `KB`/`MB` are powers of 1000, `KiB`/`MiB` (and `K`/`M`) of 1024. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
  const m = SIZE_RE.exec(value.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[(m[2] ?? "b").toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}
