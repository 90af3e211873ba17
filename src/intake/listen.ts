/**
 * The listen addresses of the master's listeners (`intake.lmtp`, `metrics.listen`, `web.listen`): parsing HOST:PORT,
 * telling loopback peers from others, and the error for an address that cannot be taken. Separate from
 * lmtp.ts because the metrics endpoint uses them too, and should not load the LMTP listener (nor
 * smtp-server) to parse its address.
 */
import { isIP, type Server } from "node:net";
import path from "node:path";
import { QrunnerError, describeError } from "../util/errors.js";

/** A listener (LMTP or metrics) could not take its address. */
export class ListenError extends QrunnerError {
  constructor(what: string, address: string, options?: { cause?: unknown }) {
    const why = options?.cause !== undefined ? `: ${describeError(options.cause)}` : "";
    super("ELISTEN", `cannot listen for ${what} on ${address}${why}`, options);
  }
}

export interface ListenAddress {
  host: string;
  port: number;
  /** a Unix socket's path (host and port are then "" and 0) */
  path?: string;
}

/** `127.0.0.1:8024`, `[::1]:8024`, `localhost:8024`; `:8024` (no host) means 127.0.0.1, never every interface. */
export function parseListen(spec: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(spec.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new RangeError(`not host:port: ${JSON.stringify(spec)}`);
  const host = m[1] ?? (m[2] || "127.0.0.1");
  return { host, port };
}

/** `intake.lmtp`: `unix:/absolute/path` for a Unix socket, else HOST:PORT (parseListen). */
export function parseLmtpListen(spec: string): ListenAddress {
  if (!spec.startsWith("unix:")) return parseListen(spec);
  const file = spec.slice("unix:".length);
  if (!path.isAbsolute(file) || file.includes("\0"))
    throw new RangeError(`not unix:/absolute/path: ${JSON.stringify(spec)}`);
  return { host: "", port: 0, path: path.normalize(file) };
}

/** Is this a loopback address (127/8, ::1, v4-mapped 127/8) or the name localhost? */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^::ffff:/, "");
  if (h === "localhost" || h === "::1") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

export function formatListen(a: ListenAddress): string {
  if (a.path !== undefined) return `unix:${a.path}`;
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * Make `server` listen on `spec` (HOST:PORT, parseListen); resolves with the address bound (the port
 * the system chose, for port 0). Rejects with ListenError naming `what` when the address is not one
 * or cannot be taken. For the HTTP listeners (metrics, the web console).
 */
export async function listenOn(server: Server, what: string, spec: string): Promise<ListenAddress> {
  let where: ListenAddress;
  try {
    where = parseListen(spec);
  } catch (err) {
    throw new ListenError(what, spec, { cause: err });
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(new ListenError(what, formatListen(where), { cause: err }));
    server.once("error", onError);
    server.listen(where.port, where.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const addr = server.address();
  return addr && typeof addr === "object" ? { host: where.host, port: addr.port } : where;
}
