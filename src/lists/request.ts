/**
 * Command mail to `-request` (and the `-join` / `-leave` shortcuts): which commands it holds.
 * Request mail is rare and small, so here (unlike the post path) we let mailparser do the MIME work,
 * on at most MAX_REQUEST_BYTES of the message.
 */
import { decodeHeaderText } from "./header-text.js";
import { headerFields, splitHeader, type HeaderField, type SplitMessage } from "./message.js";

export type Verb = "help" | "join" | "leave" | "confirm" | "echo" | "unknown";

export interface RequestCommand {
  verb: Verb;
  /** the words after the verb */
  args: string[];
  /** the line as written (trimmed), for the reply */
  line: string;
}

export interface ParsedRequest {
  commands: RequestCommand[];
  /** non-blank lines not read as commands: past `end`, a signature or the command limit */
  ignored: number;
}

export interface RequestOptions {
  /** at most this many commands are read (default 10) */
  maxCommands?: number;
}

/** Only this much of a request is parsed: commands sit at the top, attachments are not read. */
export const MAX_REQUEST_BYTES = 256 * 1024;
/**
 * A request with more MIME structure than this is not read as MIME (its Subject still counts):
 * mailparser's cost grows with the nesting depth and the part count, and no mail client nests
 * command mail deeper or splits it into more parts.
 */
const MAX_REQUEST_MULTIPARTS = 8;
const MAX_REQUEST_PARTS = 64;
/** The only header fields mailparser needs to find the text (address lists are costly to parse). */
const MIME_FIELDS = new Set(["subject", "mime-version", "content-type", "content-transfer-encoding"]);

function count(haystack: string, needle: string, max: number): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i !== -1 && n <= max; i = haystack.indexOf(needle, i + 1)) n++;
  return n;
}

/**
 * What mailparser gets: the MIME fields of the header and the body, or null when the MIME structure
 * is over the limits above (then only the Subject is read).
 */
function mimeInput(input: Buffer, split: SplitMessage | null, fields: readonly HeaderField[]): Buffer | null {
  const lower = input.toString("latin1").toLowerCase();
  if (count(lower, "multipart/", MAX_REQUEST_MULTIPARTS) > MAX_REQUEST_MULTIPARTS) return null;
  if (count(lower, "\n--", MAX_REQUEST_PARTS) > MAX_REQUEST_PARTS) return null;
  if (!split) return input;
  const kept = fields
    .filter((f) => MIME_FIELDS.has(f.name.toLowerCase()))
    .map((f) => split.header.subarray(f.start, f.end));
  return Buffer.concat([...kept, Buffer.from(split.eol), split.body]);
}

const VERBS: Record<string, Verb> = {
  help: "help",
  join: "join",
  subscribe: "join",
  leave: "leave",
  unsubscribe: "leave",
  confirm: "confirm",
  echo: "echo",
};

/** `Re:`, `Fwd:` and their common localised forms, repeated, as clients stack them. */
const REPLY_PREFIX = /^(?:\s*(?:re|fwd?|aw|sv|antw|vs|wg|tr)(?:\[\d+\])?\s*:)+\s*/i;

function command(line: string): RequestCommand {
  const words = line.split(/\s+/).filter((w) => w !== "");
  const verb = VERBS[(words[0] ?? "").toLowerCase()] ?? "unknown";
  return { verb, args: words.slice(1), line };
}

/** Read the text: subject first, then body lines, up to `end`, a signature or the limit. */
export function parseCommandText(
  subject: string | undefined,
  body: string,
  opts: RequestOptions = {},
): ParsedRequest {
  const max = opts.maxCommands ?? 10;
  const commands: RequestCommand[] = [];
  let ignored = 0;
  if (subject !== undefined) {
    const s = subject.replace(REPLY_PREFIX, "").trim();
    // a subject is often prose ("please remove me"): it counts only when it starts with a command
    if (s !== "") {
      const c = command(s);
      if (c.verb !== "unknown") commands.push(c);
      else ignored++;
    }
  }
  let stopped = false;
  for (const raw of body.split(/\r?\n/)) {
    if (raw === "-- " || raw === "--") {
      stopped = true; // signature separator: what follows is not commands
      continue;
    }
    const line = raw.trim();
    if (line === "" || line.startsWith(">")) continue;
    if (!stopped && /^(?:end|stop)\.?$/i.test(line)) {
      stopped = true;
      continue;
    }
    if (stopped || commands.length >= max) {
      ignored++;
      continue;
    }
    commands.push(command(line));
  }
  return { commands, ignored };
}

/**
 * The commands of a request message. For `join` / `leave` (mail to -join@ / -leave@) the address
 * itself is the command, unless the message confirms a pending request (a reply to a confirmation
 * that went to the wrong address): then only its `confirm` commands count.
 */
export async function parseRequest(
  raw: Buffer,
  role: "request" | "join" | "leave",
  opts: RequestOptions = {},
): Promise<ParsedRequest> {
  const { subject, text } = await requestText(raw);
  const parsed = parseCommandText(subject, text, opts);
  if (role === "request") return parsed;
  const confirms = parsed.commands.filter((c) => c.verb === "confirm");
  if (confirms.length > 0) return { commands: confirms, ignored: parsed.ignored };
  const line = role === "join" ? "join (mail to the -join address)" : "leave (mail to the -leave address)";
  return { commands: [{ verb: role, args: [], line }], ignored: 0 };
}

/**
 * The decoded Subject and plain text of a request (a reply to a held-post notice too), read from at
 * most MAX_REQUEST_BYTES of it.
 */
export async function requestText(raw: Buffer): Promise<{ subject: string | undefined; text: string }> {
  const input = raw.length > MAX_REQUEST_BYTES ? raw.subarray(0, MAX_REQUEST_BYTES) : raw;
  let subject: string | undefined;
  let text = "";
  const split = splitHeader(input);
  const fields = split ? headerFields(split.header) : [];
  const mime = mimeInput(input, split, fields);
  try {
    if (mime === null) throw new Error("too much MIME structure for a request");
    // loaded on first use: mailparser costs a command worker ~15 MB of memory it would hold idle
    const { simpleParser } = await import("mailparser");
    const mail = await simpleParser(mime, {
      skipTextToHtml: true,
      skipImageLinks: true,
      skipTextLinks: true,
      keepDeliveryStatus: true,
    });
    subject = mail.subject;
    text = mail.text ?? "";
  } catch {
    // unparseable MIME: the Subject alone still tells what was meant
    const v = fields.find((f) => f.name.toLowerCase() === "subject")?.value;
    subject = v === undefined ? undefined : decodeHeaderText(v);
  }
  return { subject, text };
}

/** The token of a Subject `confirm TOKEN` (after any `Re:`), or undefined. */
export function subjectConfirmToken(subject: string | undefined): string | undefined {
  if (subject === undefined) return undefined;
  const c = command(subject.replace(REPLY_PREFIX, "").trim());
  return c.verb === "confirm" ? c.args[0] : undefined;
}
