/**
 * Who may do what in the console. Operators (accounts in `web.operators`) see and act on everything;
 * a list's owners and moderators log in with their address and the list's moderator password and see
 * only the held posts of the lists that password opens. Rights are checked against the settings in
 * force on every request: an address removed from a list loses that list at once.
 */
import { randomBytes } from "node:crypto";
import type { Config } from "../config/schema.js";
import { normalizeAddress, sameAddress } from "../lists/addresses.js";
import type { ListConfig } from "../lists/schema.js";
import { hashPassword, verifyListPassword, verifyPassword } from "../lists/passwords.js";

export type Principal =
  { kind: "operator"; name: string } | { kind: "moderator"; address: string; lists: readonly string[] };

export interface Settings {
  config: Config;
  lists: ReadonlyMap<string, ListConfig>;
}

/** Owners and moderators of a list: who may moderate it. */
export function moderatorsOf(list: ListConfig): string[] {
  return [...list.owners, ...list.moderators];
}

function moderates(list: ListConfig, address: string): boolean {
  return moderatorsOf(list).some((a) => sameAddress(a, address));
}

/** May `p` see and act on the held posts of the list with this address? */
export function canModerate(p: Principal, listAddress: string, settings: Settings): boolean {
  if (p.kind === "operator") return settings.config.web.operators.some((o) => o.name === p.name);
  const list = [...settings.lists.values()].find((l) => sameAddress(l.address, listAddress));
  if (!list) return false;
  return p.lists.some((a) => sameAddress(a, list.address)) && moderates(list, p.address);
}

/** Is `p` an operator still in the config? */
export function isOperator(p: Principal, settings: Settings): boolean {
  return p.kind === "operator" && settings.config.web.operators.some((o) => o.name === p.name);
}

/** The lists whose held posts `p` sees, by address. */
export function visibleLists(p: Principal, settings: Settings): ListConfig[] {
  return [...settings.lists.values()]
    .filter((l) => canModerate(p, l.address, settings))
    .sort((a, b) => a.address.localeCompare(b.address));
}

/**
 * Check a login. `account` is an operator's name, or (with an `@`) a list owner's or moderator's
 * address, whose password must open at least one of the lists they moderate. Null: refused.
 */
export async function authenticate(
  settings: Settings,
  account: string,
  password: string,
): Promise<Principal | null> {
  if (account.length === 0 || account.length > 254 || password.length === 0 || password.length > 1024)
    return null;
  if (!account.includes("@")) {
    const op = settings.config.web.operators.find((o) => o.name === account);
    // an unknown name costs the same scrypt as a known one: no timing tells which names exist
    const ok = await verifyPassword(password, op?.password_hash ?? (await dummyHash()));
    return op && ok ? { kind: "operator", name: op.name } : null;
  }
  let address: string;
  try {
    address = normalizeAddress(account);
  } catch {
    return null;
  }
  const lists: string[] = [];
  for (const list of settings.lists.values())
    if (moderates(list, address) && (await verifyListPassword(list, password))) lists.push(list.address);
  if (lists.length === 0) {
    await verifyPassword(password, await dummyHash());
    return null;
  }
  return { kind: "moderator", address, lists };
}

/** A well-formed hash of a random password nobody knows, for the same cost on an unknown account. */
let dummy: Promise<string> | null = null;
function dummyHash(): Promise<string> {
  return (dummy ??= hashPassword(randomBytes(18).toString("base64url")));
}
