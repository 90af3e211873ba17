/**
 * The master's listeners follow the config, and load what they serve only when it is configured:
 * without `metrics.listen` there is no metrics object (heartbeats are not counted); once the endpoint
 * has been configured its counters live on across edits that close and reopen it. Real config files,
 * a real HTTP endpoint.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadAll } from "../../src/lists/load.js";
import { MasterListeners } from "../../src/master/listeners.js";
import type { WorkerMessage } from "../../src/protocol/worker.js";
import { silentLogger } from "../../src/util/log.js";
import { makeSite, type Site } from "../helpers/site.js";
import { parseExposition } from "../metrics/prom-text.js";

type Heartbeat = Extract<WorkerMessage, { type: "heartbeat" }>;

const SMTP = "smtp: { hosts: [{ host: 127.0.0.1, port: 2525 }] }\n";
const WORKER = { key: "incoming 0/1", runner: "incoming", slice: "0/1", pid: 100 };

function beat(handled: number): Heartbeat {
  return { type: "heartbeat", handled, failed: 0, lastProgress: Date.now(), due: 0, inHand: 0 };
}

let site: Site | undefined;
let listeners: MasterListeners | undefined;
afterEach(async () => {
  await listeners?.close();
  listeners = undefined;
  await site?.cleanup();
  site = undefined;
});

async function handledOn(port: number): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text()).get("qrunner_entries_handled_total", {
    runner: "incoming",
    slice: "0/1",
  });
}

/**
 * Listeners over a fresh site whose config is SMTP plus `yaml(site dir)`, applied as at start;
 * `edit` rewrites the config and applies it as a reload does.
 */
async function listenersOn(
  yaml: (dir: string) => string = () => "",
): Promise<{ s: Site; l: MasterListeners; edit(more: string): Promise<void> }> {
  const s = (site = await makeSite(SMTP));
  await s.writeConfig(SMTP + yaml(s.dir));
  let settings = await loadAll(s.configFile);
  const l = (listeners = new MasterListeners({
    settings: () => settings,
    workers: () => [],
    logger: silentLogger(),
  }));
  await l.apply(settings.config, true);
  return {
    s,
    l,
    async edit(more) {
      await s.writeConfig(SMTP + more);
      settings = await loadAll(s.configFile);
      await l.apply(settings.config, false);
    },
  };
}

describe("MasterListeners", () => {
  it("makes no metrics object until the endpoint is configured, then keeps it across edits", async () => {
    const { l, edit } = await listenersOn();
    expect(l.metrics).toBeNull();
    expect(l.addresses()).toEqual({ lmtp: null, metrics: null, web: null });
    l.heartbeat(WORKER, beat(3)); // nothing to count it in: not an error

    // an edit turns the endpoint on: counting starts there
    await edit("metrics: { listen: 127.0.0.1:0 }\n");
    const metrics = l.metrics;
    expect(metrics).not.toBeNull();
    const first = l.addresses().metrics;
    expect(first).not.toBeNull();
    l.heartbeat(WORKER, beat(5));
    expect(await handledOn(first!.port)).toBe(5);

    // off: the endpoint closes, the counters keep counting
    await edit("");
    expect(l.addresses().metrics).toBeNull();
    l.heartbeat(WORKER, beat(7));
    await expect(fetch(`http://127.0.0.1:${first!.port}/metrics`)).rejects.toThrow();

    // on again: the same metrics object, with what it counted meanwhile
    await edit("metrics: { listen: 127.0.0.1:0 }\n");
    expect(l.metrics).toBe(metrics);
    expect(await handledOn(l.addresses().metrics!.port)).toBe(7);
  });

  it("opens LMTP on a Unix socket from the map form, and moves it when the socket's mode changes", async () => {
    const sockIn = (dir: string): string => path.join(dir, "lmtp.sock");
    const { s, l, edit } = await listenersOn(
      (dir) => `intake: { lmtp: { listen: "unix:${sockIn(dir)}", mode: "0600" } }\n`,
    );
    const sock = sockIn(s.dir);
    expect(l.addresses().lmtp?.path).toBe(sock);
    expect((await stat(sock)).mode & 0o777).toBe(0o600);
    await edit(`intake: { lmtp: { listen: "unix:${sock}", mode: "0660" } }\n`);
    expect((await stat(sock)).mode & 0o777).toBe(0o660);
    await l.close();
    await expect(stat(sock)).rejects.toThrow(/ENOENT/);
  });

  it("serves the web console while web.listen is set: opened, moved and closed by edits, and on close", async () => {
    const { l, edit } = await listenersOn();
    expect(l.addresses().web).toBeNull();
    await edit('web: { listen: "127.0.0.1:0" }\n');
    const first = l.addresses().web;
    expect(first).not.toBeNull();
    const login = await fetch(`http://127.0.0.1:${first!.port}/login`);
    expect(login.status).toBe(200);
    expect(login.headers.get("x-frame-options")).toBe("DENY");
    // another address: the old port closes, the new one serves
    await edit('web: { listen: "localhost:0" }\n');
    const second = l.addresses().web;
    expect(second?.host).toBe("localhost");
    await expect(fetch(`http://127.0.0.1:${first!.port}/login`)).rejects.toThrow();
    await edit("");
    expect(l.addresses().web).toBeNull();
    await edit('web: { listen: "127.0.0.1:0" }\n');
    const third = l.addresses().web;
    expect((await fetch(`http://127.0.0.1:${third!.port}/login`)).status).toBe(200);
    await l.close();
    await l.close();
    await expect(fetch(`http://127.0.0.1:${third!.port}/login`)).rejects.toThrow();
  });
});
