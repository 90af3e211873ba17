import { afterEach, describe, expect, it } from "vitest";
import net from "node:net";
import { startSink, messageIdOf } from "../helpers/smtp-sink.js";
import type { Sink } from "../helpers/smtp-sink.js";
import { hostSchema } from "../../src/config/schema-smtp.js";
import { HostTransport } from "../../src/delivery/transport.js";

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function sink(opts?: Parameters<typeof startSink>[0]): Promise<Sink> {
  const s = await startSink(opts);
  open.push(s);
  return s;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

const raw = (id: string): Buffer => Buffer.from(`Message-ID:\r\n <${id}@x>\r\nSubject: s\r\n\r\nbody\r\n`);

describe("smtp sink", () => {
  it("finds folded Message-ID headers and only in the header", () => {
    expect(messageIdOf(raw("f"))).toBe("<f@x>");
    expect(messageIdOf(Buffer.from("Subject: x\r\n\r\nMessage-ID: <body@x>\r\n"))).toBe("");
  });

  it("down() refuses connections on the port and up() reopens the same port", async () => {
    const s = await sink();
    const port = s.port;
    expect(await canConnect(port)).toBe(true);
    await s.down();
    expect(await canConnect(port)).toBe(false);
    await s.up();
    expect(s.port).toBe(port);
    expect(await canConnect(port)).toBe(true);
  });

  it("waitFor resolves on enough deliveries and rejects on timeout", async () => {
    const s = await sink();
    await expect(s.waitFor(1, 50)).rejects.toThrow(/0 of 1/);
    const t = new HostTransport(hostSchema.parse({ host: s.host, port: s.port, starttls: "never" }));
    open.push(t);
    const waiting = s.waitFor(2, 5000);
    await t.send({ from: "a@x", to: ["b@x", "c@x"] }, raw("w"));
    await waiting;
    expect(s.deliveryCount()).toBe(2);
    expect(s.deliveries().get("<w@x> b@x")).toBe(1);
    s.clear();
    expect(s.messages).toHaveLength(0);
    expect(s.deliveryCount()).toBe(0);
  });

  it("close() can be called twice", async () => {
    const s = await startSink();
    await s.close();
    await s.close();
    expect(await canConnect(s.port)).toBe(false);
  });
});

describe("HostTransport TLS", () => {
  it("uses STARTTLS when offered, verifying the certificate unless told not to", async () => {
    const s = await sink({ tls: true });
    // the built-in certificate is self-signed: verification fails, a host error of kind tls
    const strict = new HostTransport(hostSchema.parse({ host: s.host, port: s.port }));
    open.push(strict);
    const r1 = await strict.send({ from: "a@x", to: ["b@x"] }, raw("t1"));
    expect(r1.hostError?.kind).toBe("tls");
    const lax = new HostTransport(
      hostSchema.parse({ host: s.host, port: s.port, tls_reject_unauthorized: false }),
    );
    open.push(lax);
    const r2 = await lax.send({ from: "a@x", to: ["b@x"] }, raw("t2"));
    expect(r2.accepted).toEqual(["b@x"]);
    expect(s.messages[0]?.secure).toBe(true);
  });

  it("starttls: require fails with a tls host error when the server offers none; never sends in clear", async () => {
    const s = await sink();
    const req = new HostTransport(hostSchema.parse({ host: s.host, port: s.port, starttls: "require" }));
    open.push(req);
    const r = await req.send({ from: "a@x", to: ["b@x"] }, raw("r"));
    expect(r.hostError?.kind).toBe("tls");
    const s2 = await sink({ tls: true });
    const never = new HostTransport(hostSchema.parse({ host: s2.host, port: s2.port, starttls: "never" }));
    open.push(never);
    expect((await never.send({ from: "a@x", to: ["b@x"] }, raw("n"))).accepted).toEqual(["b@x"]);
    expect(s2.messages[0]?.secure).toBe(false);
  });

  it("announces BODY=8BITMIME for 8-bit messages only", async () => {
    const s = await sink();
    const t = new HostTransport(hostSchema.parse({ host: s.host, port: s.port, starttls: "never" }));
    open.push(t);
    await t.send({ from: "a@x", to: ["b@x"] }, raw("7"));
    await t.send({ from: "a@x", to: ["b@x"] }, Buffer.concat([raw("8"), Buffer.from([0xe9, 0x0d, 0x0a])]));
    expect(s.messages.map((m) => m.bodyType)).toEqual(["7bit", "8bitmime"]);
  });
});
