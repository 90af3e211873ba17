/** Cached list states for the incoming runner (see ListStateCache). */
import { statSync } from "node:fs";
import { ListStateStore } from "./state.js";
import { emptyState, type ListState } from "./state-shape.js";

/**
 * List states for readers that look at every post (the incoming runner): a state is read again
 * only when its file changed. Writers replace the file by a rename (a new inode), so inode, size
 * and mtime tell a change exactly; the check is one stat, no read and no parse.
 * The states handed out are shared: callers must not change them.
 */
export class ListStateCache {
  private readonly byFile = new Map<string, { key: string; state: ListState }>();

  constructor(readonly stateDir: string) {}

  async read(listAddress: string): Promise<ListState> {
    const store = new ListStateStore(this.stateDir, listAddress);
    const st = statSync(store.file, { throwIfNoEntry: false });
    const key = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : "none";
    const hit = this.byFile.get(store.file);
    if (hit?.key === key) return hit.state;
    const state = st ? await store.read() : emptyState();
    this.byFile.set(store.file, { key, state });
    return state;
  }
}
