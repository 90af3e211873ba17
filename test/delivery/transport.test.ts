import { afterEach, describe, expect, it } from "vitest";
import { hostSchema } from "../../src/config/schema-smtp.js";
import type { ConfigInput } from "../../src/config/schema.js";
import { HostTransport, deliverBatched } from "../../src/delivery/transport.js";
import { MissingSecretError, CaFileError } from "../../src/delivery/errors.js";
import type { SendResult } from "../../src/delivery/outcome.js";
import { startSink } from "../helpers/smtp-sink.js";
import type { Sink, SinkOptions } from "../helpers/smtp-sink.js";

type HostInput = NonNullable<NonNullable<ConfigInput["smtp"]>["hosts"]>[number];

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function sink(opts?: SinkOptions): Promise<Sink> {
  const s = await startSink(opts);
  open.push(s);
  return s;
}

function transport(s: Sink, extra: Partial<HostInput> = {}, env?: Record<string, string>): HostTransport {
  const cfg = hostSchema.parse({
    host: s.host,
    port: s.port,
    starttls: "never",
    connect_timeout: "5s",
    timeout: "5s",
    ...extra,
  });
  const t = new HostTransport(cfg, env ? { env } : {});
  open.push(t);
  return t;
}

function message(id: string, body = "Hello.\r\n"): Buffer {
  return Buffer.from(
    `From: a@example.org\r\nTo: list@example.org\r\nMessage-ID: <${id}@example.org>\r\nSubject: t\r\n\r\n${body}`,
    "latin1",
  );
}

function byRecipient(r: SendResult): Record<string, { kind: string; code?: number }> {
  return Object.fromEntries(
    r.failed.map((f) => [
      f.recipient,
      f.code === undefined ? { kind: f.kind } : { kind: f.kind, code: f.code },
    ]),
  );
}

describe("HostTransport", () => {
  it("delivers the raw bytes exactly: 8-bit, CRLF, leading dots, no added headers", async () => {
    const s = await sink();
    const t = transport(s);
    const body = Buffer.concat([
      Buffer.from("Caf\xe9 latin-1 byte\r\n", "latin1"),
      Buffer.from("UTF-8: Grüße, 日本語\r\n", "utf8"),
      Buffer.from(".a line starting with a dot\r\n..two dots\r\n.\r\nx".repeat(3) + "\r\n", "latin1"),
      Buffer.from("x".repeat(2000) + "\r\n\r\n\r\n", "latin1"),
    ]);
    const raw = Buffer.concat([message("raw1", ""), body]);
    const r = await t.send(
      { from: "dev-bounces+alice=example.net@example.org", to: ["alice@example.net"] },
      raw,
    );
    expect(r).toEqual({ accepted: ["alice@example.net"], failed: [] });
    expect(s.messages).toHaveLength(1);
    const m = s.messages[0]!;
    expect(m.raw.equals(raw)).toBe(true);
    expect(m.from).toBe("dev-bounces+alice=example.net@example.org");
    expect(m.to).toEqual(["alice@example.net"]);
    expect(m.messageId).toBe("<raw1@example.org>");
    expect(s.deliveries().get("<raw1@example.org> alice@example.net")).toBe(1);
  });

  it("sends the null sender as MAIL FROM:<>", async () => {
    const s = await sink();
    const r = await transport(s).send({ from: "", to: ["owner@example.org"] }, message("bounce"));
    expect(r.accepted).toEqual(["owner@example.org"]);
    expect(s.messages[0]?.from).toBe("");
  });

  it("sends addresses with domains lower-cased (and punycoded), local parts kept, replies reported under the given address", async () => {
    const s = await sink();
    const t = transport(s);
    const cases: [string, string[], string[]][] = [
      ["Alice.Smith+tag@Example.ORG", ["Bob@Example.NET"], ["Bob@example.net"]],
      ['"odd,one"@example.org', ["carol@example.net"], ["carol@example.net"]],
      // sent as erin@xn--bcher-kva.example; smtp-server reports the domain decoded again
      ["dave@example.org", ["erin@Bücher.example"], ["erin@bücher.example"]],
    ];
    for (const [i, [from, to, expected]] of cases.entries()) {
      const r = await t.send({ from, to }, message(`env${i}`, i === 0 ? "caf\xe9\r\n" : "plain\r\n"));
      expect(r.failed, JSON.stringify(r.failed)).toEqual([]);
      expect(r.accepted).toEqual(to);
      const m = s.messages[i]!;
      expect(m.to).toEqual(expected);
      expect(m.bodyType).toBe(i === 0 ? "8bitmime" : "7bit");
    }
    expect(s.messages[0]?.from).toBe("Alice.Smith+tag@example.org");
    expect(s.messages[1]?.from).toBe('"odd,one"@example.org');
  });

  it("reuses pooled connections for several messages", async () => {
    const s = await sink();
    const t = transport(s, { pool_size: 1 });
    for (let i = 0; i < 5; i++)
      await t.send({ from: "a@example.org", to: ["b@example.net"] }, message(`p${i}`));
    expect(s.transactions).toBe(5);
    expect(s.connections).toBe(1);
  });

  it("classifies per-recipient replies: 451 and 552 temporary, 550 permanent, the rest delivered", async () => {
    const s = await sink({
      faults: {
        rcpt: (a) =>
          a.startsWith("busy") ? 451 : a.startsWith("gone") ? 550 : a.startsWith("full") ? 552 : undefined,
      },
    });
    const r = await transport(s).send(
      {
        from: "a@example.org",
        to: [
          "ok1@example.net",
          "busy@example.net",
          "gone@example.net",
          "full@example.net",
          "ok2@example.net",
        ],
      },
      message("rcpt"),
    );
    expect(r.accepted).toEqual(["ok1@example.net", "ok2@example.net"]);
    expect(byRecipient(r)).toEqual({
      "busy@example.net": { kind: "temporary", code: 451 },
      "gone@example.net": { kind: "permanent", code: 550 },
      "full@example.net": { kind: "temporary", code: 552 },
    });
    expect(r.hostError).toBeUndefined();
    expect(r.failed.find((f) => f.recipient === "gone@example.net")?.message).toMatch(/^550 /);
    expect([...s.deliveries().keys()].sort()).toEqual([
      "<rcpt@example.org> ok1@example.net",
      "<rcpt@example.org> ok2@example.net",
    ]);
  });

  it("keeps each recipient's own reply when every RCPT is refused", async () => {
    const s = await sink({ faults: { rcpt: (a) => (a.startsWith("busy") ? 450 : 550) } });
    const r = await transport(s).send(
      { from: "a@example.org", to: ["busy@example.net", "gone@example.net"] },
      message("all"),
    );
    expect(r.accepted).toEqual([]);
    expect(byRecipient(r)).toEqual({
      "busy@example.net": { kind: "temporary", code: 450 },
      "gone@example.net": { kind: "permanent", code: 550 },
    });
    expect(r.hostError).toBeUndefined();
    expect(s.transactions).toBe(0);
  });

  it("applies a DATA-stage reply to every recipient: 451 temporary, 554 permanent", async () => {
    const s = await sink({ faults: { data: 451 } });
    const t = transport(s);
    const to = ["a@example.net", "b@example.net"];
    let r = await t.send({ from: "s@example.org", to }, message("d1"));
    expect(byRecipient(r)).toEqual({
      "a@example.net": { kind: "temporary", code: 451 },
      "b@example.net": { kind: "temporary", code: 451 },
    });
    s.setFaults({ data: 554 });
    r = await t.send({ from: "s@example.org", to }, message("d2"));
    expect(byRecipient(r)).toEqual({
      "a@example.net": { kind: "permanent", code: 554 },
      "b@example.net": { kind: "permanent", code: 554 },
    });
    s.setFaults({ data: undefined });
    r = await t.send({ from: "s@example.org", to }, message("d3"));
    expect(r.accepted).toEqual(to);
    expect(s.transactions).toBe(1);
  });

  it("applies a MAIL FROM refusal to every recipient", async () => {
    const s = await sink({ faults: { mailFrom: 451 } });
    const r = await transport(s).send({ from: "s@example.org", to: ["a@example.net"] }, message("mf"));
    expect(byRecipient(r)).toEqual({ "a@example.net": { kind: "temporary", code: 451 } });
    expect(r.hostError).toBeUndefined();
  });

  it("reports a 421 greeting as a host error, every recipient temporary", async () => {
    const s = await sink({ faults: { greeting: 421 } });
    const r = await transport(s).send(
      { from: "s@example.org", to: ["a@example.net", "b@example.net"] },
      message("g"),
    );
    expect(r.hostError).toMatchObject({ kind: "greeting", code: 421 });
    expect(r.accepted).toEqual([]);
    expect(r.failed.map((f) => f.kind)).toEqual(["temporary", "temporary"]);
  });

  it("reports a refused connection as a host error of kind connect, and works again once the host is back", async () => {
    const s = await sink();
    const t = transport(s);
    await s.down();
    const r = await t.send({ from: "s@example.org", to: ["a@example.net"] }, message("down"));
    expect(r.hostError?.kind).toBe("connect");
    expect(r.hostError?.message).toMatch(/ECONNREFUSED/);
    expect(byRecipient(r)).toEqual({ "a@example.net": { kind: "temporary" } });
    await s.up();
    const r2 = await t.send({ from: "s@example.org", to: ["a@example.net"] }, message("up"));
    expect(r2).toEqual({ accepted: ["a@example.net"], failed: [] });
  });

  it("reports a connection closed before any greeting as a host error of kind connect", async () => {
    const s = await sink({ faults: { refuse: true } });
    const r = await transport(s).send({ from: "s@example.org", to: ["a@example.net"] }, message("refuse"));
    expect(r.hostError?.kind).toBe("connect");
    expect(r.failed).toHaveLength(1);
  });

  it("makes every recipient temporary when the connection drops in the middle of DATA", async () => {
    const s = await sink({ faults: { dropInData: true } });
    const raw = message("drop", "x".repeat(200_000) + "\r\n");
    const r = await transport(s).send({ from: "s@example.org", to: ["a@example.net", "b@example.net"] }, raw);
    expect(r.accepted).toEqual([]);
    expect(r.failed.map((f) => [f.recipient, f.kind])).toEqual([
      ["a@example.net", "temporary"],
      ["b@example.net", "temporary"],
    ]);
    expect(r.hostError).toBeUndefined();
    expect(s.transactions).toBe(0);
  });

  it("reports a server that stops answering as a host error of kind timeout", async () => {
    const s = await sink({ faults: { dataDelayMs: 3000 } });
    const r = await transport(s, { timeout: "300ms" }).send(
      { from: "s@example.org", to: ["a@example.net"] },
      message("slow"),
    );
    expect(r.hostError?.kind).toBe("timeout");
    expect(r.failed[0]?.kind).toBe("temporary");
  });

  it("fails an unusable recipient address permanently and still delivers to the others", async () => {
    const s = await sink();
    const r = await transport(s).send(
      { from: "s@example.org", to: ["a b@example.net", "ok@example.net", "<x>@example.net"] },
      message("inv"),
    );
    expect(r.accepted).toEqual(["ok@example.net"]);
    expect(r.failed.map((f) => [f.recipient, f.kind])).toEqual([
      ["a b@example.net", "permanent"],
      ["<x>@example.net", "permanent"],
    ]);
  });

  it("close() is idempotent, and a send after it is a temporary failure", async () => {
    const s = await sink();
    const t = transport(s);
    t.close();
    t.close();
    const r = await t.send({ from: "s@example.org", to: ["a@example.net"] }, message("closed"));
    expect(r.failed[0]?.kind).toBe("temporary");
    expect(s.connections).toBe(0);
  });
});

describe("HostTransport auth", () => {
  const secret = "s3cr3t-Pa55word!";

  it("logs in with the password from the environment variable", async () => {
    const s = await sink({ auth: { user: "qrunner", pass: secret } });
    const t = transport(s, { auth: { user: "qrunner", pass_env: "QR_TEST_PASS" } }, { QR_TEST_PASS: secret });
    const r = await t.send({ from: "s@example.org", to: ["a@example.net"] }, message("auth"));
    expect(r).toEqual({ accepted: ["a@example.net"], failed: [] });
    expect(s.logins).toBe(1);
  });

  it("reports a refused login as a host error of kind auth, without the password anywhere", async () => {
    const s = await sink({ auth: { user: "qrunner", pass: "the-right-one" }, echoAuthFailure: true });
    const t = transport(s, { auth: { user: "qrunner", pass_env: "QR_TEST_PASS" } }, { QR_TEST_PASS: secret });
    const r = await t.send({ from: "s@example.org", to: ["a@example.net"] }, message("badauth"));
    expect(r.hostError?.kind).toBe("auth");
    expect(r.hostError?.code).toBe(535);
    expect(r.hostError?.message).toMatch(/\[redacted\]/);
    expect(JSON.stringify(r)).not.toContain(secret);
    expect(JSON.stringify(t)).not.toContain(secret);
    const probe = await t.probe();
    expect(probe?.kind).toBe("auth");
    expect(JSON.stringify(probe)).not.toContain(secret);
  });

  it("refuses to start without the password variable, naming the variable", () => {
    const cfg = hostSchema.parse({
      host: "127.0.0.1",
      port: 2525,
      auth: { user: "u", pass_env: "QR_NOT_SET_ANYWHERE" },
    });
    expect(() => new HostTransport(cfg, { env: {} })).toThrow(MissingSecretError);
    expect(() => new HostTransport(cfg, { env: {} })).toThrow(/QR_NOT_SET_ANYWHERE/);
  });

  it("refuses to start when the ca file cannot be read", () => {
    const cfg = hostSchema.parse({ host: "127.0.0.1", port: 2525, ca: "/nonexistent/qrunner-ca.pem" });
    expect(() => new HostTransport(cfg)).toThrow(CaFileError);
  });

  it("probe() reports a working host as undefined and a refused one as connect", async () => {
    const s = await sink();
    const t = transport(s);
    expect(await t.probe()).toBeUndefined();
    await s.down();
    expect((await t.probe())?.kind).toBe("connect");
  });
});

describe("deliverBatched", () => {
  it("splits the recipients into transactions of at most max_recipients and merges the results", async () => {
    const s = await sink({ faults: { rcpt: (a) => (a.startsWith("r5") ? 550 : undefined) } });
    const t = transport(s, { pool_size: 2 });
    const to = Array.from({ length: 7 }, (_, i) => `r${i}@example.net`);
    const r = await deliverBatched(t, { from: "s@example.org", to }, message("batch"), 3);
    expect(r.accepted.sort()).toEqual(to.filter((a) => a !== "r5@example.net").sort());
    expect(byRecipient(r)).toEqual({ "r5@example.net": { kind: "permanent", code: 550 } });
    expect(s.messages.map((m) => m.to.length).sort()).toEqual([1, 2, 3]);
    expect(s.messages.every((m) => m.to.length <= 3)).toBe(true);
    await s.waitFor(6, 1000);
  });

  it("stops opening transactions once the host fails, failing the rest temporarily", async () => {
    const s = await sink({ faults: { greeting: 421 } });
    const t = transport(s, { pool_size: 1 });
    const to = Array.from({ length: 10 }, (_, i) => `r${i}@example.net`);
    const r = await deliverBatched(t, { from: "s@example.org", to }, message("stop"), 2);
    expect(r.hostError?.kind).toBe("greeting");
    expect(r.failed).toHaveLength(10);
    expect(r.failed.every((f) => f.kind === "temporary")).toBe(true);
    expect(s.connections).toBe(1);
  });
});
