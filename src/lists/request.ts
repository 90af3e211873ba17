/**
 * Command mail to `-request` (and the `-join` / `-leave` shortcuts): which commands it holds.
 * Request mail is rare and small, so here (unlike the post path) we let mailparser do the MIME work,
 * on at most MAX_REQUEST_BYTES of the message.
 */
import { decodeHeaderText } from "./header-text.js";
import { getHeader } from "./message.js";

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
  const input = raw.length > MAX_REQUEST_BYTES ? raw.subarray(0, MAX_REQUEST_BYTES) : raw;
  let subject: string | undefined;
  let text = "";
  try {
    // loaded on first use: mailparser costs a command worker ~15 MB of memory it would hold idle
    const { simpleParser } = await import("mailparser");
    const mail = await simpleParser(input, {
      skipTextToHtml: true,
      skipImageLinks: true,
      skipTextLinks: true,
      keepDeliveryStatus: true,
    });
    subject = mail.subject;
    text = mail.text ?? "";
  } catch {
    // unparseable MIME: the Subject alone still tells what was meant
    const v = getHeader(raw, "subject");
    subject = v === undefined ? undefined : decodeHeaderText(v);
  }
  const parsed = parseCommandText(subject, text, opts);
  if (role === "request") return parsed;
  const confirms = parsed.commands.filter((c) => c.verb === "confirm");
  if (confirms.length > 0) return { commands: confirms, ignored: parsed.ignored };
  const line = role === "join" ? "join (mail to the -join address)" : "leave (mail to the -leave address)";
  return { commands: [{ verb: role, args: [], line }], ignored: 0 };
}
