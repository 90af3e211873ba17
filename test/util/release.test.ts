import { describe, expect, it } from "vitest";
import pino from "pino";
import { Writable } from "node:stream";
import { releaseInOrder } from "../../src/util/release.js";

function recordingLogger(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: "info" }, sink), lines };
}

describe("releaseInOrder", () => {
  it("runs every step in order even when earlier ones throw or reject, and logs each failure", async () => {
    const { log, lines } = recordingLogger();
    const ran: string[] = [];
    const failed = await releaseInOrder(log, [
      [
        "close the watcher",
        () => {
          ran.push("watcher");
          throw new Error("EBADF");
        },
      ],
      [
        "stop the workers",
        async () => {
          ran.push("workers");
          await Promise.reject(new Error("timeout"));
        },
      ],
      ["nothing to do", () => undefined],
      [
        "release the lock",
        async () => {
          ran.push("lock");
        },
      ],
    ]);
    expect(ran).toEqual(["watcher", "workers", "lock"]);
    expect(failed).toBe(2);
    expect(lines.map((l) => l["step"])).toEqual(["close the watcher", "stop the workers"]);
    expect(String(lines[0]?.["msg"])).toContain("cannot close the watcher");
  });

  it("returns 0 when every step succeeds", async () => {
    const { log, lines } = recordingLogger();
    expect(
      await releaseInOrder(log, [
        ["a", () => 1],
        ["b", async () => 2],
      ]),
    ).toBe(0);
    expect(lines).toEqual([]);
  });
});
