/**
 * The LMTP listener on a Unix socket (`intake.lmtp: unix:/path`, as Postfix's `lmtp:unix:` connects
 * to): who may connect is decided by the socket file's mode, owner and group instead of by address.
 * A socket file left by a crashed master is replaced; anything else at the path never is.
 */
import { execFile } from "node:child_process";
import { chmod, chown, lstat, unlink } from "node:fs/promises";
import net from "node:net";
import { promisify } from "node:util";
import { QrunnerError } from "../util/errors.js";

/** Who may use the socket: `mode` (default 0660), `owner` and `group` (names or numeric ids). */
export interface SocketAccess {
  mode?: number | undefined;
  owner?: string | number | undefined;
  group?: string | number | undefined;
}

export const DEFAULT_SOCKET_MODE = 0o660;

/** The path is taken by something that is not a stale socket of ours. */
export class SocketPathError extends QrunnerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ESOCKETPATH", message, options);
  }
}

/** Is a process accepting connections on the socket file? */
function accepting(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Make way for a new socket at `file`: nothing there is fine; a socket nobody accepts on (left by a
 * crash) is removed; a live socket or any other file is an error, and is left alone.
 */
export async function clearStaleSocket(file: string): Promise<void> {
  let st;
  try {
    st = await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!st.isSocket()) throw new SocketPathError(`${file} exists and is not a socket: not replaced`);
  if (await accepting(file)) throw new SocketPathError(`another process listens on ${file} (EADDRINUSE)`);
  await unlink(file);
}

/**
 * Listen on `file` with no window in which others may connect: the socket is created under umask
 * 0177 (owner only), then given its mode, owner and group.
 */
export async function listenUnix(server: net.Server, file: string, access: SocketAccess): Promise<void> {
  await clearStaleSocket(file);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const old = process.umask(0o177);
    try {
      server.listen(file, () => {
        server.off("error", reject);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
  try {
    const [uid, gid] = await Promise.all([idOf("passwd", access.owner), idOf("group", access.group)]);
    if (uid !== undefined || gid !== undefined) await chown(file, uid ?? -1, gid ?? -1);
    await chmod(file, access.mode ?? DEFAULT_SOCKET_MODE);
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
}

/** Remove our socket file after the server closed (a later start would replace it anyway). */
export async function removeSocket(file: string): Promise<void> {
  try {
    if ((await lstat(file)).isSocket()) await unlink(file);
  } catch {
    // gone already
  }
}

const run = promisify(execFile);

/** A user or group id: a number as is, a name through getent (so NSS sources such as LDAP count). */
async function idOf(db: "passwd" | "group", who: string | number | undefined): Promise<number | undefined> {
  if (who === undefined) return undefined;
  if (typeof who === "number") return who;
  if (/^\d+$/.test(who)) return Number(who);
  let out: string;
  try {
    out = (await run("getent", [db, who], { timeout: 10_000 })).stdout;
  } catch (err) {
    throw new SocketPathError(`no such ${db === "passwd" ? "user" : "group"}: ${JSON.stringify(who)}`, {
      cause: err,
    });
  }
  const id = Number(out.split(":")[2]);
  if (!Number.isInteger(id))
    throw new SocketPathError(`cannot read the id of ${db === "passwd" ? "user" : "group"} ${who}`);
  return id;
}
