/**
 * Intake of one message into `incoming`: check it is a message, route its envelope recipient to a
 * list, and queue it durably. Shared by `qrunner inject` and the LMTP listener.
 */
import { readFile } from "node:fs/promises";
import { loadAllCached } from "../lists/settings-cache.js";
import { routeRecipient, normalizeAddress, addressProblem, type Route } from "../lists/addresses.js";
import { checkMessage, getHeader, stripFromLine } from "../lists/message.js";
import { extractAddresses } from "../lists/header-addresses.js";
import { Switchboard } from "../queue/switchboard.js";
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

/** Read the whole message from a file or standard input. */
export async function readMessage(file: string | undefined): Promise<Buffer> {
  if (file) return readFile(file);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export interface InjectResult {
  id: string;
  to: string;
  role: Route["role"];
}

/** Queue `raw` for `to` (default: the first list address in To/Cc); durable when it resolves. */
export async function injectMessage(
  configFile: string,
  input: Buffer,
  envelope: { to?: string | undefined; from?: string | undefined },
): Promise<InjectResult> {
  // an MTA pipe may put an mbox "From " line in front; its address is the envelope sender
  const stripped = stripFromLine(input);
  const raw = stripped.raw;
  if (envelope.from === undefined && stripped.sender !== undefined && addressProblem(stripped.sender) === null)
    envelope = { ...envelope, from: stripped.sender };
  const check = checkMessage(raw);
  if (!check.ok) throw new InjectError(65, `not an RFC 5322 message: ${check.reason}`);
  let settings;
  try {
    settings = await loadAllCached(configFile);
  } catch (err) {
    // an MTA must keep the message and retry: the operator fixes the config meanwhile
    throw new InjectError(75, err instanceof ConfigError ? err.message : describeError(err), { cause: err });
  }
  const candidates = envelope.to !== undefined ? [envelope.to] : [...headerRecipients(raw)];
  let route: Route | null = null;
  let to = "";
  for (const c of candidates) {
    route = routeRecipient(c, settings.lists);
    if (route) {
      to = normalizeAddress(c);
      break;
    }
  }
  if (!route) {
    const what = envelope.to !== undefined ? envelope.to : "any list address in To or Cc";
    throw new InjectError(67, `no such list or address: ${JSON.stringify(what)}`);
  }
  const sender = envelopeSender(raw, envelope.from);
  const queue = await Switchboard.open({ root: settings.config.qfiles, queue: "incoming" }).catch((err: unknown) => {
    throw new InjectError(75, describeError(err), { cause: err });
  });
  try {
    const id = await queue.enqueue(raw, {
      sender,
      recipients: [to],
      to,
      list: route.list.address,
      kind: route.role,
      ...(route.verpMember !== undefined ? { extra: { verpMember: route.verpMember } } : {}),
    });
    return { id, to, role: route.role };
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
    if (explicit === undefined) throw new InjectError(65, `not a valid sender address: ${JSON.stringify(from)}`);
    return explicit;
  }
  const rp = getHeader(raw, "return-path");
  if (rp !== undefined) return pick(extractAddresses(rp)[0] ?? rp) ?? "";
  const fromHeader = getHeader(raw, "from");
  return (fromHeader !== undefined ? pick(extractAddresses(fromHeader)[0]) : undefined) ?? "";
}
