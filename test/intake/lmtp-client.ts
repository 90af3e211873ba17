/**
 * A minimal LMTP client for tests that must see every reply line exactly (one per recipient after
 * DATA), and act at the moment a reply arrives (e.g. look at the disk right after a 250).
 */
import net from "node:net";

export interface Reply {
  code: number;
  /** every line of the reply, without CRLF */
  lines: string[];
  /** the text of the last line after the code (and the enhanced status code, when there is one) */
  text: string;
}

export class LmtpClient {
  private buf = "";
  private readonly replies: Reply[] = [];
  private readonly waiters: Array<(r: Reply) => void> = [];
  private pending: string[] = [];
  private closed_ = false;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => this.onData(d));
    socket.on("close", () => {
      this.closed_ = true;
    });
    socket.on("error", () => undefined);
  }

  /** Connect to a TCP port on `host`, or to a Unix socket when `port` is a path. */
  static async connect(
    port: number | string,
    host = "127.0.0.1",
  ): Promise<{ client: LmtpClient; greeting: Reply }> {
    const socket = typeof port === "string" ? net.connect(port) : net.connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new LmtpClient(socket);
    return { client, greeting: await client.next() };
  }

  get isClosed(): boolean {
    return this.closed_;
  }

  private onData(d: string): void {
    this.buf += d;
    for (;;) {
      const nl = this.buf.indexOf("\r\n");
      if (nl < 0) return;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 2);
      this.pending.push(line);
      // "250-..." continues, "250 ..." ends a reply
      if (line.length < 4 || line[3] !== "-") {
        const lines = this.pending;
        this.pending = [];
        const last = lines[lines.length - 1] ?? "";
        const text = last.slice(4).replace(/^\d\.\d{1,3}\.\d{1,3} /, "");
        const r: Reply = { code: Number(last.slice(0, 3)), lines, text };
        const w = this.waiters.shift();
        if (w) w(r);
        else this.replies.push(r);
      }
    }
  }

  /** The next reply (waits for it; fails after timeoutMs). */
  next(timeoutMs = 10_000): Promise<Reply> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no LMTP reply in time")), timeoutMs);
      this.waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }

  /** Send one command line and read its reply. */
  async command(line: string): Promise<Reply> {
    this.socket.write(line + "\r\n");
    return this.next();
  }

  /** Send the message (dot-stuffed here) after DATA's 354; returns nothing: read the replies with next(). */
  sendData(message: Buffer): void {
    const text = message.toString("latin1").replace(/\r?\n/g, "\r\n");
    const stuffed = text.replace(/^\./gm, "..");
    this.socket.write(Buffer.from(stuffed + (stuffed.endsWith("\r\n") ? "" : "\r\n") + ".\r\n", "latin1"));
  }

  /** Resolves once the server has closed the connection. */
  closed(): Promise<void> {
    if (this.closed_) return Promise.resolve();
    return new Promise((resolve) => this.socket.once("close", () => resolve()));
  }

  /** Send raw bytes (part of a message, without its end). */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}
