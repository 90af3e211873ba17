/**
 * The contract qrunner relies on beyond nodemailer's documented API (src/delivery/nodemailer-adapter.ts):
 * the pooled transport's `transporter.send(mail, callback)` with a minimal mail object, and the pool
 * options `getSocket` and `maxRequeues`. A nodemailer upgrade that changes any of it fails here, by
 * name, against a real SMTP server on loopback, before it can fail delivery.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  NodemailerContractError,
  createPool,
  sendPrepared,
  type PoolOptions,
  type SmtpPool,
} from "../../src/delivery/nodemailer-adapter.js";
import { startSink, type Sink } from "../helpers/smtp-sink.js";

let sink: Sink | undefined;
let pool: SmtpPool | undefined;
afterEach(async () => {
  pool?.close();
  await sink?.close();
  pool = undefined;
  sink = undefined;
});

function options(s: Sink, sockets: net.Socket[], extra: Partial<PoolOptions> = {}): PoolOptions {
  return {
    pool: true,
    host: s.host,
    port: s.port,
    secure: false,
    ignoreTLS: true,
    maxConnections: 1,
    maxRequeues: 1,
    getSocket: (_o, callback) => {
      const connection = net.connect({ host: s.host, port: s.port });
      sockets.push(connection);
      callback(null, { connection });
    },
    logger: false,
    ...extra,
  };
}

// raw bytes a MIME composer would rewrite: a bare LF line, 8-bit text, a header without a space
const RAW = Buffer.from(
  "From: a@example.org\r\nX-Odd:value\r\nSubject: caf\xc3\xa9\r\n\r\nline one\nline two\r\n.dot\r\n",
  "latin1",
);

describe("nodemailer contract (what nodemailer-adapter.ts relies on)", () => {
  it("sendPrepared delivers the raw bytes unchanged with the given envelope, through our socket", async () => {
    sink = await startSink();
    const sockets: net.Socket[] = [];
    pool = createPool(options(sink, sockets));
    const info = await sendPrepared(
      pool,
      {
        from: "bounces@example.org",
        to: ["x@example.net", "y@example.net"],
        size: RAW.length,
        use8BitMime: true,
      },
      RAW,
      "closed",
    );
    expect(info.accepted).toEqual(["x@example.net", "y@example.net"]);
    expect(sockets.length).toBe(1); // getSocket was used: the pool connected through our socket
    const [m] = sink.messages;
    expect(m?.from).toBe("bounces@example.org");
    expect(m?.to).toEqual(["x@example.net", "y@example.net"]);
    expect(m?.bodyType).toBe("8bitmime");
    // on the wire SMTP needs CRLF line ends: a bare LF becomes CRLF and nothing else changes
    // (dot-stuffing is undone by the sink); every other byte arrives as written
    expect(m?.raw.toString("latin1")).toBe(
      RAW.toString("latin1").split("\r\n").join("\n").split("\n").join("\r\n"),
    );
  });

  it("the null sender goes out as MAIL FROM:<>", async () => {
    sink = await startSink();
    pool = createPool(options(sink, []));
    await sendPrepared(
      pool,
      { from: "", to: ["x@example.net"], size: RAW.length, use8BitMime: false },
      RAW,
      "closed",
    );
    expect(sink.messages[0]?.from).toBe("");
  });

  it("a closed pool refuses at once with the caller's words", async () => {
    sink = await startSink();
    pool = createPool(options(sink, []));
    pool.close();
    await expect(
      sendPrepared(
        pool,
        { from: "a@example.org", to: ["x@example.net"], size: 1, use8BitMime: false },
        RAW,
        "transport closed",
      ),
    ).rejects.toThrow("transport closed");
  });

  it("a pool without the private transporter fails loudly, naming the adapter", async () => {
    sink = await startSink();
    const fake = { transporter: undefined } as unknown as SmtpPool;
    expect(() =>
      sendPrepared(fake, { from: "", to: ["x@example.net"], size: 1, use8BitMime: false }, RAW, ""),
    ).toThrow(NodemailerContractError);
  });
});
