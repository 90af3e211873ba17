/**
 * `<state>/status.json`: what the master knows, written atomically (temp file + rename) on every
 * event and every few seconds, read by `qrunner status` and the web console. Its shape is in
 * src/protocol/status.ts (stable: fields are only added).
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { MasterStatus } from "../protocol/status.js";

export type { MasterStatus, RejectedEdit, WorkerState, WorkerStatus } from "../protocol/status.js";

export function statusFile(stateDir: string): string {
  return path.join(stateDir, "status.json");
}

export async function writeStatus(stateDir: string, status: MasterStatus): Promise<void> {
  const file = statusFile(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(status, null, 2) + "\n", { mode: 0o644 });
  await rename(tmp, file);
}

/** The last status the master wrote, or null when there is none (or it is unreadable). */
export async function readStatus(stateDir: string): Promise<MasterStatus | null> {
  try {
    const parsed = JSON.parse(await readFile(statusFile(stateDir), "utf8")) as unknown;
    if (typeof parsed === "object" && parsed !== null && (parsed as { format?: unknown }).format === 1)
      return parsed as MasterStatus;
  } catch {
    // missing or half-written by a foreign tool: no status
  }
  return null;
}
