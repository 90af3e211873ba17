/**
 * What the list commands (members, held and the moderation actions, list password) do first: load the
 * config and the lists, and find the list the command names, each failure said once on stderr and
 * mapped to its exit code (78 invalid config, 67 no such list).
 */
import type { loadAll } from "../lists/load.js";
import type { ListConfig } from "../lists/schema.js";
import { Exit, configPath, warn, type GlobalOptions } from "./context.js";

export type Settings = Awaited<ReturnType<typeof loadAll>>;

/** The config and lists, or Exit.CONFIG after saying what is wrong. */
export async function settingsOrExit(opts: GlobalOptions): Promise<Settings | number> {
  const load = await import("../lists/load.js");
  const { ConfigError, describeError } = await import("../util/errors.js");
  try {
    return await load.loadAll(configPath(opts));
  } catch (err) {
    warn(err instanceof ConfigError ? `invalid config:\n${err.message}` : describeError(err));
    return Exit.CONFIG;
  }
}

/** The list `arg` names (its address in any case, or its bare name when unique), or Exit.NOUSER. */
export async function listOrExit(settings: Settings, arg: string): Promise<ListConfig | number> {
  const { findList } = await import("../lists/addresses.js");
  const list = findList(settings.lists, arg);
  if (list) return list;
  const known = [...settings.lists.values()].map((l) => l.address).join(", ") || "none";
  warn(`no such list: ${arg} (lists: ${known})`);
  return Exit.NOUSER;
}
