/**
 * Intake of one message into `incoming`: check it is a message, route its envelope recipient to a
 * list, and queue it durably. Shared by `qrunner inject` and the LMTP listener.
 */
import { createReadStream } from "node:fs";
import { loadAllCached } from "../lists/settings-cache.js";
import { routeRecipient, normalizeAddress, addressProblem, type Route } from "../lists/addresses.js";
import type { ListConfig } from "../lists/schema.js";
import { getHeader } from "../lists/message.js";
import { checkMessage, stripFromLine } from "../lists/message-check.js";
import { extractAddresses } from "../lists/header-addresses.js";
import { Switchboard } from "../queue/switchboard.js";
import type { NewEntryMeta } from "../queue/types.js";
import { verpRefusal, VerpKeyError, VerpKeys } from "../lists/verp.js";
import { ConfigError, QrunnerError, QueueUnavailableError, describeError } from "../util/errors.js";

/** An intake failure with the sysexits code it maps to (65, 67, 75). */
export class InjectError extends QrunnerError {
  constructor(
    readonly exitCode: 65 | 67 | 75,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(exitCode === 65 ? "ENOTMESSAGE" : exitCode === 67 ? "ENOADDRESS" : "ETEMPFAIL", message, options);
  }
}

/**
 * The largest message `inject` takes: 64 MiB, well above any list's `max_size` and any relay's SIZE
 * limit. Past it the input is refused with 65 (a permanent failure: retrying cannot make it smaller)
 * before any of it is parsed, and no more than the limit is ever held in memory.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function tooLarge(limit: number): InjectError {
  return new InjectError(65, `message larger than ${limit} bytes (the limit of inject); not queued`);
}

/**
 * Read the whole message from a file or standard input, holding at most `limit` bytes. Standard
 * input past the limit is read to its end and dropped, so that the MTA writing into the pipe sees
 * our exit code rather than a broken pipe.
 */
export async function readMessage(
  file: string | undefined,
  limit: number = MAX_MESSAGE_BYTES,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<Buffer> {
  const input = file ? createReadStream(file) : stdin;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of input) {
    const chunk = typeof c === "string" ? Buffer.from(c, "latin1") : (c as Buffer);
    total += chunk.length;
    if (total <= limit) chunks.push(chunk);
    else if (file) {
      (input as ReturnType<typeof createReadStream>).destroy();
      break;
    } else chunks.length = 0;
  }
  if (total > limit) throw tooLarge(limit);
  return Buffer.concat(chunks, total);
}

export interface InjectResult {
  id: string;
  to: string;
  role: Route["role"];
}

/** A message checked for intake: the bytes to queue (without an mbox From_ line) and its envelope sender. */
export interface PreparedMessage {
  raw: Buffer;
  sender: string;
}

/** An envelope recipient that names one of our lists, normalized. */
export interface RoutedRecipient {
  to: string;
  route: Route;
}

/**
 * Check `input` is a message and settle its envelope sender: `from` when given, else the mbox From_
 * line an MTA pipe may put in front, else Return-Path or From. Throws InjectError(65).
 */
export function prepareMessage(input: Buffer, from: string | undefined): PreparedMessage {
  if (input.length > MAX_MESSAGE_BYTES) throw tooLarge(MAX_MESSAGE_BYTES);
  // an MTA pipe may put an mbox "From " line in front; its address is the envelope sender
  const stripped = stripFromLine(input);
  const raw = stripped.raw;
  if (from === undefined && stripped.sender !== undefined && addressProblem(stripped.sender) === null)
    from = stripped.sender;
  const check = checkMessage(raw);
  if (!check.ok) throw new InjectError(65, `not an RFC 5322 message: ${check.reason}`);
  return { raw, sender: envelopeSender(raw, from) };
}

/** The list and role `address` names, or null when it is no address of ours. */
export function routeAddress(
  address: string,
  lists: ReadonlyMap<string, ListConfig>,
): RoutedRecipient | null {
  const route = routeRecipient(address, lists);
  return route ? { to: normalizeAddress(address), route } : null;
}

/**
 * Why intake refuses a routed recipient's VERP part (unsigned, forged, stale, or VERP to a list with
 * `verp: false`: src/lists/verp.ts), or null. Throws VerpKeyError when the site's VERP secret in
 * `stateDir` cannot be read (a temporary failure: the sender retries).
 */
export function verpProblem(
  r: RoutedRecipient,
  stateDir: string,
  keys: VerpKeys,
  now = Date.now(),
): string | null {
  return verpRefusal(r.route, () => keys.get(stateDir), now);
}

/** The metadata of the `incoming` entry for one routed recipient. */
export function incomingMeta(sender: string, r: RoutedRecipient): NewEntryMeta {
  return {
    sender,
    recipients: [r.to],
    to: r.to,
    list: r.route.list.address,
    kind: r.route.role,
    ...(r.route.verpMember !== undefined
      ? {
          extra: {
            verpMember: r.route.verpMember,
            ...(r.route.verpTag !== undefined ? { verpTag: r.route.verpTag } : {}),
          },
        }
      : {}),
  };
}

/** Queue `raw` for `to` (default: the first list address in To/Cc); durable when it resolves. */
export async function injectMessage(
  configFile: string,
  input: Buffer,
  envelope: { to?: string | undefined; from?: string | undefined },
): Promise<InjectResult> {
  const { raw, sender } = prepareMessage(input, envelope.from);
  let settings;
  try {
    settings = await loadAllCached(configFile);
  } catch (err) {
    // an MTA must keep the message and retry: the operator fixes the config meanwhile
    throw new InjectError(75, err instanceof ConfigError ? err.message : describeError(err), { cause: err });
  }
  const candidates = envelope.to !== undefined ? [envelope.to] : [...headerRecipients(raw)];
  let routed: RoutedRecipient | null = null;
  for (const c of candidates) {
    routed = routeAddress(c, settings.lists);
    if (routed) break;
  }
  if (!routed) {
    const what = envelope.to !== undefined ? envelope.to : "any list address in To or Cc";
    throw new InjectError(67, `no such list or address: ${JSON.stringify(what)}`);
  }
  let refusal: string | null;
  try {
    refusal = verpProblem(routed, settings.config.state, new VerpKeys());
  } catch (err) {
    if (err instanceof VerpKeyError) throw new InjectError(75, err.message, { cause: err });
    throw err;
  }
  if (refusal !== null) throw new InjectError(67, `${JSON.stringify(routed.to)}: ${refusal}`);
  const queue = await Switchboard.open({
    root: settings.config.qfiles,
    queue: "incoming",
    ...(settings.config.queue.recycle ? {} : { spares: false as const }),
  }).catch((err: unknown) => {
    throw new InjectError(75, describeError(err), { cause: err });
  });
  try {
    const id = await queue.enqueue(raw, incomingMeta(sender, routed));
    return { id, to: routed.to, role: routed.route.role };
  } catch (err) {
    if (err instanceof QueueUnavailableError) throw new InjectError(75, err.message, { cause: err });
    throw err;
  } finally {
    queue.close();
  }
}

function* headerRecipients(raw: Buffer): Iterable<string> {
  for (const h of ["to", "cc"]) {
    const v = getHeader(raw, h);
    if (v) yield* extractAddresses(v);
  }
}

/** --from, else Return-Path, else the From address; "" (the null sender) for `<>`. */
function envelopeSender(raw: Buffer, from: string | undefined): string {
  const pick = (v: string | undefined): string | undefined => {
    if (v === undefined) return undefined;
    const a = normalizeAddress(v.trim());
    if (a === "" || a === "<>") return "";
    return addressProblem(a) === null ? a : undefined;
  };
  const explicit = pick(from);
  if (from !== undefined) {
    if (explicit === undefined)
      throw new InjectError(65, `not a valid sender address: ${JSON.stringify(from)}`);
    return explicit;
  }
  const rp = getHeader(raw, "return-path");
  if (rp !== undefined) return pick(extractAddresses(rp)[0] ?? rp) ?? "";
  const fromHeader = getHeader(raw, "from");
  return (fromHeader !== undefined ? pick(extractAddresses(fromHeader)[0]) : undefined) ?? "";
}
