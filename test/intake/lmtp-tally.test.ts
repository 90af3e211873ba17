/**
 * The LMTP listener's log at info: one line per connection summing up its messages (issue 16: relaying
 * at rate, a line per message at info was most of the log), each message at debug only.
 */
import { Writable } from "node:stream";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { LmtpListener } from "../../src/intake/lmtp.js";
import type { IntakeSettings } from "../../src/intake/lmtp-options.js";
import { loadAll } from "../../src/lists/load.js";
import { makeSite, message, type Site } from "../helpers/site.js";
import { LmtpClient } from "./lmtp-client.js";

let site: Site | undefined;
let listener: LmtpListener | undefined;
let client: LmtpClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await listener?.close();
  listener = undefined;
  await site?.cleanup();
  site = undefined;
});

/** A pino logger at `level` whose JSON lines land in `lines`. */
function capture(level: string): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString("utf8").split("\n"))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

/** A listener logging at `level` into `lines`, and a client that has said LHLO. */
async function open(level: string): Promise<{ c: LmtpClient; lines: Array<Record<string, unknown>> }> {
  site = await makeSite("", [{ address: "dev@example.org", members: ["bob@example.com"] }]);
  const loaded = (await loadAll(site.configFile)) as IntakeSettings;
  const { logger, lines } = capture(level);
  listener = await LmtpListener.start({ listen: "127.0.0.1:0", settings: () => loaded, logger });
  const c = (client = (await LmtpClient.connect(listener.address.port)).client);
  expect((await c.command("LHLO client.test")).code).toBe(250);
  return { c, lines };
}

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
}

describe("LMTP log lines", () => {
  it("logs one info line per connection with its messages and recipients, each message at debug", async () => {
    const { c, lines } = await open("info");
    for (let i = 0; i < 3; i++) {
      expect((await c.command("MAIL FROM:<alice@example.net>")).code).toBe(250);
      expect((await c.command("RCPT TO:<dev@example.org>")).code).toBe(250);
      expect((await c.command("RCPT TO:<nobody@example.org>")).code).toBe(550);
      expect((await c.command("DATA")).code).toBe(354);
      c.sendData(message({ id: `<tally-${i}@test.example>` }));
      expect((await c.next()).code).toBe(250);
    }
    expect((await c.command("QUIT")).code).toBe(221);
    const ended = () => lines.filter((l) => l["msg"] === "LMTP session ended");
    await waitFor(() => ended().length > 0);
    expect(ended()).toHaveLength(1);
    expect(ended()[0]).toMatchObject({
      level: 30,
      remote: "127.0.0.1",
      messages: 3,
      recipients: { queued: 3, unknown: 3 },
    });
    expect(ended()[0]?.["bytes"]).toBeGreaterThan(0);
    expect(lines.filter((l) => l["msg"] === "LMTP message queued")).toHaveLength(0);
  });

  it("still logs each queued message at debug", async () => {
    const { c, lines } = await open("debug");
    expect((await c.command("MAIL FROM:<alice@example.net>")).code).toBe(250);
    expect((await c.command("RCPT TO:<dev@example.org>")).code).toBe(250);
    expect((await c.command("DATA")).code).toBe(354);
    c.sendData(message({ id: "<tally-debug@test.example>" }));
    expect((await c.next()).code).toBe(250);
    const queued = lines.filter((l) => l["msg"] === "LMTP message queued");
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ level: 20, from: "alice@example.net", recipients: 1 });
  });
});
