/**
 * YAML with positions. A config or list file is parsed keeping its syntax tree and a line counter, so that
 * every problem found later (a YAML error, a schema issue, a cross-field check) is reported at the line and
 * column of the node at fault, the way an operator's editor can jump to it.
 */
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from "yaml";
import type { Document } from "yaml";
import type { z } from "zod";
import type { ConfigIssue } from "../util/errors.js";
import { valueAt, zodIssues } from "./issues.js";
import type { PathSeg } from "./issues.js";

export type { PathSeg };
export { valueAt };

export interface ParsedYaml {
  /** absolute path, as reported in issues */
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
  /** the document as plain data (an empty document is an empty mapping); undefined after a syntax error */
  readonly data: unknown;
  /** issues found so far; validation and cross-field checks append to it */
  readonly issues: ConfigIssue[];
}

/** Parse one YAML document. Syntax errors and warnings land in `issues`, each at its position. */
export function parseYaml(file: string, text: string): ParsedYaml {
  const lines = new LineCounter();
  // prettyErrors off: we want the bare message and compute the position ourselves; uniqueKeys rejects a
  // key given twice (the second silently winning is how a fix gets lost)
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const issues: ConfigIssue[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const { line, col } = lines.linePos(e.pos[0]);
    issues.push({ file, line, col, message: `YAML: ${e.message}` });
  }
  let data: unknown;
  if (issues.length === 0) {
    try {
      data = doc.contents === null ? {} : doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      issues.push({
        file,
        line: 1,
        col: 1,
        message: `YAML: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }
  return { file, doc, lines, data, issues };
}

/**
 * Where the node at `path` starts. `at: "key"` points at the key of a mapping entry (for an unknown key);
 * otherwise at the value, or at the key when the value is empty. When the path does not exist (a missing
 * key) the deepest node that does exist is used: the mapping the key is missing from.
 */
export function locate(
  p: ParsedYaml,
  path: readonly PathSeg[],
  at: "value" | "key" = "value",
): { line: number; col: number } {
  let node: unknown = p.doc.contents;
  let key: unknown;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(p.doc);
    let next: { key: unknown; value: unknown } | undefined;
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(seg));
      if (pair) next = { key: pair.key, value: pair.value };
    } else if (isSeq(node) && typeof seg === "number") {
      const item: unknown = node.items[seg];
      if (item !== undefined) next = { key: undefined, value: item };
    }
    if (!next) return startOf(p, node);
    key = next.key;
    node = next.value;
  }
  if (at === "key" && key !== undefined) return startOf(p, key);
  // an empty value (`log:` with nothing after it) has a zero-width range after the colon: the key reads better
  if (key !== undefined && (node === null || (isScalar(node) && node.source === "" && node.value === null)))
    return startOf(p, key);
  return startOf(p, node);
}

function startOf(p: ParsedYaml, node: unknown): { line: number; col: number } {
  const range = (node as { range?: unknown } | null)?.range;
  if (Array.isArray(range) && typeof range[0] === "number") return p.lines.linePos(range[0]);
  return { line: 1, col: 1 };
}

/** Record an issue at the node at `path`. */
export function addIssue(
  p: ParsedYaml,
  path: readonly PathSeg[],
  message: string,
  at: "value" | "key" = "value",
): void {
  p.issues.push({ file: p.file, ...locate(p, path, at), message });
}

/**
 * Validate the parsed data with a zod schema; every zod issue becomes a located ConfigIssue in `p.issues`.
 * Returns the parsed output, or undefined when there were issues (or the YAML did not parse).
 */
export function validate<S extends z.ZodTypeAny>(p: ParsedYaml, schema: S): z.output<S> | undefined {
  if (p.issues.length > 0) return undefined;
  const r = schema.safeParse(p.data);
  if (r.success) return r.data as z.output<S>;
  for (const i of zodIssues(r.error.issues, schema, p.data)) addIssue(p, i.path, i.message, i.at);
  return undefined;
}

/** Issues sorted by file, then position, for stable output; an issue found twice is shown once. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const unique = new Map(issues.map((i) => [`${i.file}\0${i.line}\0${i.col}\0${i.message}`, i]));
  return [...unique.values()].sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col,
  );
}
