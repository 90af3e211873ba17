/**
 * Validating the lists once read: each list file parsed and checked against the schema and its file
 * name, members files merged in line by line, and the checks across lists (one file per address, no
 * list named like another list's -request/-bounces/... address). Pure: load.ts finds and reads the
 * files (async or sync) and hands the bytes here, so both loaders share every rule.
 */
import path from "node:path";
import type { ConfigIssue } from "../util/errors.js";
import { unreadable } from "../config/load.js";
import { addIssue, locate, parseYaml, sortIssues, validate } from "../config/yaml.js";
import type { ParsedYaml } from "../config/yaml.js";
import { address as addressSchema, listSchema } from "./schema.js";
import type { ListConfig, ListConfigParsed } from "./schema.js";

/** The addresses a list answers besides its own; a list may not be named like one of another list's. */
const SUFFIXES = ["-request", "-join", "-leave", "-bounces", "-owner"] as const;

/**
 * One list file on its way. `address` and `membersFile` are taken from the file even when other keys are
 * invalid, so that the file name, duplicates and the members file are checked in the same run.
 */
export interface Draft {
  p: ParsedYaml;
  /** the validated list; undefined when the file has issues of its own */
  list?: ListConfigParsed;
  /** the list address as written, when it is a valid address */
  address?: string;
  /** absolute members file, when the list names one */
  membersFile?: string;
}

/** A file's bytes, or why it could not be read. */
export type Read = Buffer | Error;

export interface ListsInspection {
  readonly lists: Map<string, ListConfig>;
  readonly issues: readonly ConfigIssue[];
}

/** Each members file once, though two lists may share one. */
export function membersFilesOf(drafts: readonly Draft[]): string[] {
  return [...new Set(drafts.flatMap((d) => (d.membersFile !== undefined ? [d.membersFile] : [])))];
}

/** Parse and validate each list file. */
export function parseAll(files: readonly string[], reads: readonly Read[]): Draft[] {
  return files.map((file, i) => {
    const bytes = reads[i] ?? new Error("not read");
    const p = parseYaml(file, bytes instanceof Error ? "" : bytes.toString("utf8"));
    if (bytes instanceof Error) {
      p.issues.push({ file, line: 1, col: 1, message: unreadable("the list file", bytes) });
      return { p };
    }
    const list = validate(p, listSchema);
    const raw = (list ?? (typeof p.data === "object" && p.data !== null ? p.data : {})) as Record<
      string,
      unknown
    >;
    const address =
      typeof raw["address"] === "string" && addressSchema.safeParse(raw["address"]).success
        ? raw["address"]
        : undefined;
    const membersFile =
      typeof raw["members_file"] === "string"
        ? path.resolve(path.dirname(file), raw["members_file"])
        : undefined;
    if (address !== undefined && path.basename(file, ".yaml").toLowerCase() !== address.toLowerCase())
      addIssue(
        p,
        ["address"],
        `list address ${address} does not match the file name ${path.basename(file)}: rename the file to ${address}.yaml or fix the address`,
      );
    list?.members.forEach((m, j) => {
      if (m.toLowerCase() === list.address.toLowerCase())
        addIssue(p, ["members", j], `members[${j}]: a list cannot be its own member`);
    });
    return {
      p,
      ...(list ? { list } : {}),
      ...(address !== undefined ? { address } : {}),
      ...(membersFile !== undefined ? { membersFile } : {}),
    };
  });
}

/** Merge members files, check across lists, and collect every issue. */
export function finish(drafts: readonly Draft[], members: ReadonlyMap<string, Read>): ListsInspection {
  const issues: ConfigIssue[] = [];
  const lists = new Map<string, ListConfig>();
  const owner = new Map<string, string>(); // lowercased address -> file
  for (const d of drafts) {
    const { p, list, address } = d;
    const key = address?.toLowerCase();
    const fromFile =
      d.membersFile !== undefined
        ? readMembers(p, d.membersFile, members.get(d.membersFile), key, issues)
        : [];
    const first = key !== undefined ? owner.get(key) : undefined;
    if (first !== undefined) addIssue(p, ["address"], `list ${address} is already defined in ${first}`);
    else if (key !== undefined) owner.set(key, p.file);
    issues.push(...p.issues);
    if (!list || !key || p.issues.length > 0) continue;
    const at = key.lastIndexOf("@");
    lists.set(key, {
      ...list,
      ...(d.membersFile !== undefined ? { members_file: d.membersFile } : {}),
      name: key.slice(0, at),
      domain: key.slice(at + 1),
      file: p.file,
      allMembers: dedupe([...list.members, ...fromFile]),
    });
  }
  issues.push(...clashes(drafts));
  return { lists, issues: sortIssues(issues) };
}

/** One address a line; blank lines and `#` comments allowed; each bad line reported at file:line:1. */
function readMembers(
  p: ParsedYaml,
  file: string,
  bytes: Read | undefined,
  list: string | undefined,
  issues: ConfigIssue[],
): string[] {
  if (!bytes || bytes instanceof Error) {
    addIssue(
      p,
      ["members_file"],
      `members_file: ${unreadable(`members file ${file}`, bytes ?? new Error("not read"))}`,
    );
    return [];
  }
  const out: string[] = [];
  bytes
    .toString("utf8")
    .split(/\r?\n/)
    .forEach((raw, i) => {
      // `#` is legal inside a local part, so a comment starts a line or follows whitespace
      const text = withoutComment(raw.trim());
      if (text === "" || text.startsWith("#")) return;
      const r = addressSchema.safeParse(text);
      const line = i + 1;
      if (!r.success)
        issues.push({
          file,
          line,
          col: 1,
          message: `not a plain mail address (local@domain): ${JSON.stringify(text)}`,
        });
      else if (text.toLowerCase() === list)
        issues.push({ file, line, col: 1, message: "a list cannot be its own member" });
      else out.push(text);
    });
  return out;
}

/** A members-file line without its ` # comment` (a `#` after whitespace), in one pass. */
function withoutComment(line: string): string {
  for (let i = line.indexOf("#"); i !== -1; i = line.indexOf("#", i + 1))
    if (i > 0 && /\s/.test(line.charAt(i - 1))) return line.slice(0, i).trimEnd();
  return line;
}

/** Case-insensitive on the domain only: RFC 5321 leaves the local part's case to the receiving host. */
export function dedupe(addresses: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const a of addresses) {
    const at = a.lastIndexOf("@");
    const k = `${a.slice(0, at)}@${a.slice(at + 1).toLowerCase()}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(a);
    }
  }
  return out;
}

/** A list named like another list's -request/-bounces/... address would steal that list's mail. */
function clashes(drafts: readonly Draft[]): ConfigIssue[] {
  const byKey = new Map<string, string>(); // lowercased address -> address as written in the first file
  for (const { address } of drafts)
    if (address !== undefined && !byKey.has(address.toLowerCase())) byKey.set(address.toLowerCase(), address);
  const out: ConfigIssue[] = [];
  for (const d of drafts) {
    if (d.address === undefined) continue;
    const lower = d.address.toLowerCase();
    const at = lower.lastIndexOf("@");
    const local = lower.slice(0, at);
    const domain = lower.slice(at);
    for (const s of SUFFIXES) {
      const cut = local.indexOf(s);
      // `dev-bounces+alice=example.net` is dev's VERP address too
      const stem = local.endsWith(s)
        ? local.slice(0, -s.length)
        : s === "-bounces" && cut > 0 && local[cut + s.length] === "+"
          ? local.slice(0, cut)
          : undefined;
      const other = stem !== undefined ? byKey.get(stem + domain) : undefined;
      if (other === undefined) continue;
      out.push({
        file: d.p.file,
        ...locate(d.p, ["address"]),
        message: `list address ${d.address} is taken: it is the ${s.slice(1)} address of list ${other}`,
      });
    }
  }
  return out;
}
