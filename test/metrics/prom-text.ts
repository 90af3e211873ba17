/** Reading Prometheus text exposition (0.0.4) in tests: series and their values, and the TYPE lines. */

export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  series: Series[];
  /** metric family name -> TYPE */
  types: Map<string, string>;
  /** the value of the one series with exactly these labels (a subset match when `partial`), or undefined */
  get(name: string, labels?: Record<string, string>): number | undefined;
  /** the sum over every series of `name` whose labels include `labels` */
  sum(name: string, labels?: Record<string, string>): number;
}

const LINE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Exposition {
  const series: Series[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      if (name && type) types.set(name, type);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE_RE.exec(line);
    if (!m) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL_RE))
      labels[l[1] ?? ""] = (l[2] ?? "").replace(/\\(.)/g, "$1");
    const v = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    series.push({ name: m[1] ?? "", labels, value: v });
  }
  const matches = (s: Series, name: string, labels: Record<string, string>): boolean =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return {
    series,
    types,
    get(name, labels = {}) {
      const found = series.filter(
        (s) => matches(s, name, labels) && Object.keys(s.labels).length === Object.keys(labels).length,
      );
      return found.length === 1 ? found[0]?.value : undefined;
    },
    sum(name, labels = {}) {
      return series.filter((s) => matches(s, name, labels)).reduce((n, s) => n + s.value, 0);
    },
  };
}
