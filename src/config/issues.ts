/**
 * zod issues in words an operator can act on: which key, what was expected, what was written, and for an
 * unknown key the nearest known one (most unknown keys are typos).
 */
import { z } from "zod";
import { duration, size } from "./schema-units.js";

export type PathSeg = string | number;

/** The plain value at `path` of the parsed data (undefined when absent). */
export function valueAt(data: unknown, path: readonly PathSeg[]): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

export interface LocatedIssue {
  path: PathSeg[];
  message: string;
  at: "value" | "key";
}

/** `smtp.hosts[0].port`; the top level is empty. */
export function pathString(path: readonly PathSeg[]): string {
  return path.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

function prefix(path: readonly PathSeg[]): string {
  return path.length > 0 ? `${pathString(path)}: ` : "";
}

/** A written value, briefly: `"25x"`, `true`, `an empty value`, `a mapping`. */
export function show(v: unknown): string {
  if (v === null || v === undefined) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}..."` : s;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  integer: "a whole number",
  boolean: "true or false",
  object: "a mapping (key: value)",
  array: "a list",
};

function typeName(t: string): string {
  return TYPE_NAMES[t] ?? t;
}

/** Strip wrappers (defaults, optionals, transforms) to reach the schema that has the shape. */
function unwrap(s: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (s instanceof z.ZodDefault) s = s.removeDefault() as z.ZodTypeAny;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodTypeAny;
    else if (s instanceof z.ZodEffects) s = s.innerType() as z.ZodTypeAny;
    else return s;
  }
}

/** The schema of the value at `path`, as declared (defaults and transforms still on); undefined when none. */
function schemaAt(schema: z.ZodTypeAny, path: readonly PathSeg[]): z.ZodTypeAny | undefined {
  let s: z.ZodTypeAny | undefined = schema;
  for (const seg of path) {
    const u: z.ZodTypeAny = unwrap(s);
    if (u instanceof z.ZodObject) s = (u.shape as Record<string, z.ZodTypeAny>)[String(seg)];
    else if (u instanceof z.ZodArray) s = u.element as z.ZodTypeAny;
    else s = undefined;
    if (!s) return undefined;
  }
  return s;
}

/** The keys the schema allows at `path` (for "did you mean"); empty when not a mapping. */
export function knownKeys(schema: z.ZodTypeAny, path: readonly PathSeg[]): string[] {
  const s = schemaAt(schema, path);
  const u = s && unwrap(s);
  return u instanceof z.ZodObject ? Object.keys(u.shape as Record<string, unknown>) : [];
}

/** "a duration (...)" when the value at `path` is one of the unit types, whose zod union says only "string or number". */
function unitKind(schema: z.ZodTypeAny, path: readonly PathSeg[]): string | undefined {
  let s = schemaAt(schema, path);
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional)
    s = (s instanceof z.ZodDefault ? s.removeDefault() : s.unwrap()) as z.ZodTypeAny;
  if (s === duration) return "a duration such as 30s, 5m, 1h, 5d";
  if (s === size) return "a size such as 500KB, 1MB, 10MiB";
  return undefined;
}

/** Edit distance counting a swap of two neighbours as one edit (`prot` is one edit from `port`). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] ?? [];
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(
        at(i - 1, j) + 1,
        at(i, j - 1) + 1,
        at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, at(i - 2, j - 2) + 1);
      row[j] = v;
    }
  }
  return at(a.length, b.length);
}

export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

/** One option of a union, as "expected ..." words. */
function expectedOf(i: z.ZodIssue): string | undefined {
  if (i.code === "invalid_type") return typeName(i.expected);
  if (i.code === "invalid_literal") return JSON.stringify(i.expected);
  return undefined;
}

function bound(
  kind: "min" | "max",
  i: { type: string; inclusive: boolean; exact?: boolean },
  n: number | bigint,
): string {
  const num = Number(n);
  if (i.type === "array")
    return kind === "min"
      ? `needs at least ${num} item${num === 1 ? "" : "s"}`
      : `allows at most ${num} items`;
  if (i.type === "string") {
    if (kind === "min" && num === 1) return "must not be empty";
    return kind === "min" ? `must be at least ${num} characters` : `must be at most ${num} characters`;
  }
  if (kind === "min") return i.inclusive ? `must be at least ${num}` : `must be greater than ${num}`;
  return i.inclusive ? `must be at most ${num}` : `must be less than ${num}`;
}

function describeIssue(i: z.ZodIssue, value: unknown, unit: string | undefined): string {
  switch (i.code) {
    case "invalid_type":
      return `expected ${typeName(i.expected)}, got ${show(value)}`;
    case "invalid_literal":
      return `expected ${JSON.stringify(i.expected)}, got ${show(value)}`;
    case "invalid_enum_value":
      return `expected one of ${i.options.map((o) => String(o)).join(", ")}; got ${show(value)}`;
    case "invalid_union": {
      if (unit !== undefined) return `expected ${unit}, got ${show(value)}`;
      const options = i.unionErrors.map((e) =>
        e.issues.length === 1 && e.issues[0] ? expectedOf(e.issues[0]) : undefined,
      );
      if (options.every((o) => o !== undefined))
        return `expected ${[...new Set(options)].join(" or ")}, got ${show(value)}`;
      return `${i.message}: ${show(value)}`;
    }
    case "too_small":
      return `${bound("min", i, i.minimum)}, got ${Array.isArray(value) ? `${value.length}` : show(value)}`;
    case "too_big":
      return `${bound("max", i, i.maximum)}, got ${Array.isArray(value) ? `${value.length}` : show(value)}`;
    case "invalid_string":
      if (i.validation === "url") return `not a URL: ${show(value)}`;
      return i.message.startsWith("not ")
        ? `${i.message}: ${show(value)}`
        : `expected ${i.message}, got ${show(value)}`;
    case "custom":
      // our own refinements already quote the value (`not a duration: "5x"`); others get it appended
      return typeof value === "string" && !i.message.includes(JSON.stringify(value))
        ? `${i.message}: ${show(value)}`
        : i.message;
    default:
      return i.message;
  }
}

/** Turn zod issues into located, worded ones. `data` is the validated input (to quote what was written). */
export function zodIssues(
  issues: readonly z.ZodIssue[],
  schema: z.ZodTypeAny,
  data: unknown,
): LocatedIssue[] {
  const out: LocatedIssue[] = [];
  for (const i of issues) {
    const value = valueAt(data, i.path);
    if (i.code === "unrecognized_keys") {
      const known = knownKeys(schema, i.path);
      for (const k of i.keys) {
        const near = suggest(k, known);
        const where = i.path.length > 0 ? ` in ${pathString(i.path)}` : "";
        out.push({
          path: [...i.path, k],
          at: "key",
          message: `unknown key "${k}"${where}${near ? ` (did you mean "${near}"?)` : ""}`,
        });
      }
    } else if (i.code === "invalid_type" && value === undefined && i.path.length > 0) {
      const parent = i.path.slice(0, -1);
      out.push({
        path: i.path,
        at: "value",
        message: `${prefix(parent)}missing required key "${String(i.path[i.path.length - 1])}"`,
      });
    } else {
      out.push({
        path: i.path,
        at: "value",
        message: `${prefix(i.path)}${describeIssue(i, value, unitKind(schema, i.path))}`,
      });
    }
  }
  return out;
}
