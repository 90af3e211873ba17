/**
 * Loading `qrunner.yaml`: YAML with positions, the zod schema, cross-field checks, paths made absolute.
 * Every problem becomes a ConfigIssue at the node at fault, and all of them are thrown at once in one
 * ConfigError, so that one `qrunner config check` shows everything to fix.
 */
import { createHash } from "node:crypto";
import { accessSync, constants, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../util/errors.js";
import type { ConfigIssue } from "../util/errors.js";
import { configSchema } from "./schema.js";
import type { Config, ParsedConfig } from "./schema.js";
import { pathString } from "./issues.js";
import { addIssue, locate, parseYaml, sortIssues, validate } from "./yaml.js";
import type { ParsedYaml } from "./yaml.js";

/** What reading a config file found: the config when it validates, and every issue. */
export interface ConfigInspection {
  readonly file: string;
  readonly config?: Config;
  readonly issues: readonly ConfigIssue[];
  /**
   * The lists folder (absolute) whenever the file names one, or takes the default, even if other keys are
   * invalid: so that lists can be checked in the same run.
   */
  readonly listsDir?: string;
}

/** Read and validate a config file; throws ConfigError with every issue found. */
export async function loadConfig(file: string): Promise<Config> {
  return unwrap(await inspectConfig(file));
}

/** The same, synchronously (for `inject`, which runs once per message and wants no event-loop round trips). */
export function loadConfigSync(file: string): Config {
  return unwrap(inspectConfigSync(file));
}

/** Like loadConfig, but returns the issues instead of throwing (for `config check` and `loadAll`). */
export async function inspectConfig(file: string): Promise<ConfigInspection> {
  const abs = path.resolve(file);
  let bytes: Buffer | Error;
  try {
    bytes = await readFile(abs);
  } catch (err) {
    bytes = err as Error;
  }
  return build(abs, bytes);
}

export function inspectConfigSync(file: string): ConfigInspection {
  const abs = path.resolve(file);
  let bytes: Buffer | Error;
  try {
    bytes = readFileSync(abs);
  } catch (err) {
    bytes = err as Error;
  }
  return build(abs, bytes);
}

function unwrap(r: ConfigInspection): Config {
  if (r.config && r.issues.length === 0) return r.config;
  throw new ConfigError(r.issues);
}

/** A one-line reason for a failed read, with the fix when the cause is the usual one. */
export function unreadable(what: string, err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `${what} does not exist`;
  if (code === "EISDIR") return `${what} is a directory, not a file`;
  if (code === "EACCES" || code === "EPERM") return `${what} is not readable by this user (${code})`;
  return `cannot read ${what}: ${err.message}`;
}

function build(file: string, bytes: Buffer | Error): ConfigInspection {
  if (bytes instanceof Error) {
    const hint =
      (bytes as NodeJS.ErrnoException).code === "ENOENT" ? " (give one with -C FILE or $QRUNNER_CONFIG)" : "";
    return {
      file,
      issues: [{ file, line: 1, col: 1, message: unreadable("the config file", bytes) + hint }],
    };
  }
  const dir = path.dirname(file);
  const p = parseYaml(file, bytes.toString("utf8"));
  const parsed = validate(p, configSchema);
  const listsDir = listsDirOf(p, parsed, dir);
  if (!parsed) return { file, issues: sortIssues(p.issues), ...(listsDir !== undefined ? { listsDir } : {}) };
  crossCheck(p, parsed, dir);
  if (p.issues.length > 0)
    return { file, issues: sortIssues(p.issues), listsDir: path.resolve(dir, parsed.lists) };
  const config = resolvePaths(parsed, dir, file, createHash("sha1").update(bytes).digest("hex"));
  return { file, config, issues: [], listsDir: config.lists };
}

/** The lists folder even when the rest of the file is invalid, so its lists get checked too. */
function listsDirOf(p: ParsedYaml, parsed: ParsedConfig | undefined, dir: string): string | undefined {
  if (parsed) return path.resolve(dir, parsed.lists);
  const data = p.data;
  if (data === null || typeof data !== "object" || Array.isArray(data)) return undefined;
  const lists = (data as Record<string, unknown>)["lists"];
  if (lists === undefined) return path.resolve(dir, configSchema.shape.lists.parse(undefined));
  return typeof lists === "string" ? path.resolve(dir, lists) : undefined;
}

/** `intake.lmtp` as written: a string, or the map form. */
function lmtpIn(p: ParsedYaml): unknown {
  const intake = (p.data as { intake?: unknown } | null)?.intake;
  return intake && typeof intake === "object" ? (intake as { lmtp?: unknown }).lmtp : undefined;
}

// host:port, [v6]:port, or :port (every interface)
const LISTEN_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)?:(\d{1,5})$/;

/** What the schema cannot say on its own: relations between keys, and files that must exist. */
function crossCheck(p: ParsedYaml, c: ParsedConfig, dir: string): void {
  // a host is known by its name (status, logs, health); two hosts with one name would share a health record
  const seen = new Map<string, string>();
  const groups = [
    { key: "hosts", list: c.smtp.hosts },
    { key: "fallback", list: c.smtp.fallback },
  ] as const;
  for (const { key, list } of groups) {
    list.forEach((h, i) => {
      const at = ["smtp", key, i];
      const id = h.name ?? `${h.host}:${h.port}`;
      const first = seen.get(id);
      if (first !== undefined) {
        const named = h.name !== undefined;
        addIssue(
          p,
          [...at, named ? "name" : "host"],
          `${pathString(at)}: host ${JSON.stringify(id)} is already defined at ${first}; ` +
            (named ? "give each host its own name" : "give one of them a distinct `name`"),
        );
      } else {
        const { line, col } = locate(p, at);
        seen.set(id, `${pathString(at)} (line ${line}:${col})`);
      }
      if (h.auth && !h.secure && h.starttls !== "require" && !h.allow_plaintext_auth)
        addIssue(
          p,
          [...at, "auth"],
          `${pathString([...at, "auth"])}: a password is sent only over TLS; set \`secure: true\` ` +
            `(TLS from the first byte, port 465) or \`starttls: require\` on this host` +
            (h.starttls === "never"
              ? " (it has `starttls: never`)"
              : " (`starttls: opportunistic` can be stripped by a man in the middle)"),
        );
      if (h.ca !== undefined) {
        const ca = path.resolve(dir, h.ca);
        try {
          // sync on purpose: a handful of stat calls, and loadConfigSync shares this code
          accessSync(ca, constants.R_OK);
        } catch (err) {
          addIssue(
            p,
            [...at, "ca"],
            `${pathString([...at, "ca"])}: ${unreadable(`CA file ${ca}`, err as Error)}`,
          );
        }
      }
    });
  }
  // the etcd TLS files: a node that cannot read them could not join the cluster
  const tls = c.cluster?.etcd.tls;
  for (const k of ["ca", "cert", "key"] as const) {
    const f = tls?.[k];
    if (f === undefined) continue;
    const at = ["cluster", "etcd", "tls", k];
    try {
      accessSync(path.resolve(dir, f), constants.R_OK);
    } catch (err) {
      addIssue(p, at, `${pathString(at)}: ${unreadable(`file ${path.resolve(dir, f)}`, err as Error)}`);
    }
  }
  // slices scale weights to millionths; a smaller weight would get an empty slice
  c.smtp.hosts.forEach((h, i) => {
    if (h.weight < 1e-6)
      addIssue(
        p,
        ["smtp", "hosts", i, "weight"],
        `smtp.hosts[${i}].weight: must be at least 0.000001, got ${h.weight}`,
      );
  });
  const listens = [
    {
      at: ["intake", "lmtp", ...(typeof lmtpIn(p) === "object" ? ["listen"] : [])],
      v: c.intake.lmtp?.listen,
    },
    { at: ["metrics", "listen"], v: c.metrics.listen },
  ];
  for (const { at, v } of listens) {
    if (v === undefined) continue;
    if (at[0] === "intake" && v.startsWith("unix:")) {
      if (!path.isAbsolute(v.slice(5)) || v.includes("\0"))
        addIssue(p, at, `${pathString(at)}: expected unix:/absolute/path, got ${JSON.stringify(v)}`);
      continue;
    }
    const m = LISTEN_RE.exec(v);
    if (!m || Number(m[1]) > 65535)
      addIssue(
        p,
        at,
        `${pathString(at)}: expected host:port (e.g. 127.0.0.1:9100)${at[0] === "intake" ? " or unix:/path" : ""}, got ${JSON.stringify(v)}`,
      );
  }
}

/** The etcd TLS files, made absolute. */
function etcdTlsPaths<T extends { ca: string; cert?: string | undefined; key?: string | undefined }>(
  tls: T,
  abs: (p: string) => string,
): T {
  return {
    ...tls,
    ca: abs(tls.ca),
    ...(tls.cert !== undefined ? { cert: abs(tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: abs(tls.key) } : {}),
  };
}

function resolvePaths(c: ParsedConfig, dir: string, file: string, version: string): Config {
  const abs = (p: string): string => path.resolve(dir, p);
  const withCa = <H extends { ca?: string | undefined }>(h: H): H =>
    h.ca !== undefined ? { ...h, ca: abs(h.ca) } : h;
  return {
    ...c,
    qfiles: abs(c.qfiles),
    state: abs(c.state),
    lists: abs(c.lists),
    ...(c.pid_file !== undefined ? { pid_file: abs(c.pid_file) } : {}),
    log: c.log.file !== undefined ? { ...c.log, file: abs(c.log.file) } : c.log,
    smtp: { ...c.smtp, hosts: c.smtp.hosts.map(withCa), fallback: c.smtp.fallback.map(withCa) },
    ...(c.cluster?.etcd.tls
      ? { cluster: { ...c.cluster, etcd: { ...c.cluster.etcd, tls: etcdTlsPaths(c.cluster.etcd.tls, abs) } } }
      : {}),
    file,
    version,
  };
}
