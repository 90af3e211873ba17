/**
 * The real master as a child of the demo (`node bin/qrunner start -C ...`), and a tail of the log file
 * it and its workers append JSON lines to. The demo learns from the log what only qrunner knows: which
 * workers are ready, which entries went to backoff, when a host was found down and back.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { open } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { QrunnerError } from "../util/errors.js";

/** The qrunner executable next to this build: dist/demo/ -> bin/qrunner. */
export const BIN = fileURLToPath(new URL("../../bin/qrunner", import.meta.url));

/** The master exited before the demo was done with it. */
export class MasterExitedError extends QrunnerError {
  constructor(code: number | null, signal: string | null, stderr: string) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code ?? "?"}`;
    super("EDEMO_MASTER", `the qrunner master ${how}${stderr.trim() ? `:\n${stderr.trim()}` : ""}`);
  }
}

export interface MasterChild {
  readonly pid: number | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
  stderr(): string;
  /** SIGTERM, then wait for it (and so its workers) to exit; SIGKILL after `timeoutMs`. Safe to call twice. */
  stop(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startMaster(configFile: string): MasterChild {
  const args = [BIN, "start", "-C", configFile];
  // the demo runs wherever it is started, containers included; qrunner refuses root without this
  if (process.getuid?.() === 0) args.push("--allow-root");
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (err.length < 64 * 1024) err += d.toString();
  });
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => {
      running = false;
      resolve({ code, signal });
    }),
  );
  return {
    pid: child.pid,
    exited,
    get running() {
      return running;
    },
    stderr: () => err,
    async stop(timeoutMs) {
      if (running) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export type LogLine = Record<string, unknown>;

/**
 * Follow a JSON-lines log file from its start: `poll()` reads what was appended since the last call
 * and hands each complete line to `onLine` (a line that is not JSON is skipped).
 */
export class LogTail {
  private offset = 0;
  /** the bytes of a line not yet complete (kept as bytes: a chunk may end inside a UTF-8 character) */
  private partial = Buffer.alloc(0);

  constructor(
    private readonly file: string,
    private readonly onLine: (line: LogLine) => void,
  ) {}

  async poll(): Promise<void> {
    let fh;
    try {
      fh = await open(this.file, "r");
    } catch {
      return; // not written yet
    }
    try {
      for (;;) {
        const buf = Buffer.alloc(1 << 20);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        let data = Buffer.concat([this.partial, buf.subarray(0, bytesRead)]);
        for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10)) {
          this.parse(data.subarray(0, nl).toString("utf8"));
          data = data.subarray(nl + 1);
        }
        this.partial = Buffer.from(data);
      }
    } finally {
      await fh.close();
    }
  }

  private parse(line: string): void {
    if (!line.startsWith("{")) return;
    try {
      const v: unknown = JSON.parse(line);
      if (v && typeof v === "object" && !Array.isArray(v)) this.onLine(v as LogLine);
    } catch {
      // a torn line cannot happen with O_APPEND writes of whole lines; skip anything else odd
    }
  }
}
