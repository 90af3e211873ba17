/** Durations (`500ms`, `10s`, `5m`, `1h`, `5d`, `2w`) and sizes (`512`, `10KB`, `1MB`, `1GiB`) as used in config files. */

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

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${+s.toFixed(1)}s`;
  if (s < 3600) return `${+(s / 60).toFixed(1)}m`;
  if (s < 86400) return `${+(s / 3600).toFixed(1)}h`;
  return `${+(s / 86400).toFixed(1)}d`;
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
