import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_SCAN_BYTES,
  NO_PATTERN,
  scanBounce,
  type BounceScan,
} from "../../../src/lists/bounces/detect.js";

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../fixtures/bounces");
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));

interface Expected {
  recognized: boolean;
  format: string;
  permanent: string[];
  temporary: string[];
  /** address -> status, for the ones that state one */
  status?: Record<string, string>;
  /** a substring of the reason, when not recognized */
  reason?: string;
  /** address -> BounceDetail.reason, for the ones checked */
  reasons?: Record<string, string>;
}

/** Every fixture and exactly what it must give. */
const EXPECTED: Record<string, Expected> = {
  "postfix-failed.eml": {
    recognized: true,
    format: "rfc3464",
    // carol: Original-Recipient (the list's address) wins over the forward target; Dave: domain lowercased only
    // a full mailbox is a soft bounce (temporary): the mailbox exists
    permanent: ["alice@example.net", "carol@example.net"],
    temporary: ["Dave.Smith@example.net"],
    status: { "alice@example.net": "5.1.1", "carol@example.net": "5.1.1", "Dave.Smith@example.net": "5.2.2" },
    reasons: { "alice@example.net": "userunknown", "Dave.Smith@example.net": "mailboxfull" },
  },
  "postfix-delayed.eml": {
    recognized: true,
    format: "rfc3464",
    permanent: [],
    temporary: ["erin@example.com"],
    status: { "erin@example.com": "4.4.1" },
  },
  "exim-failed.eml": {
    recognized: true,
    format: "exim",
    // henry.old@example.com was "generated from henry@example.net": the member's address wins
    permanent: ["henry@example.net"],
    temporary: ["grace@example.net"],
    status: { "henry@example.net": "5.1.1" },
    reasons: { "grace@example.net": "mailboxfull", "henry@example.net": "userunknown" },
  },
  "exim-delayed.eml": {
    recognized: true,
    format: "exim",
    permanent: [],
    temporary: ["ivy@example.net"],
    reasons: { "ivy@example.net": "delayed" },
  },
  "qmail.eml": {
    recognized: true,
    format: "qmail",
    permanent: ["ivan@example.com", "judy@example.net"],
    temporary: [],
    status: { "ivan@example.com": "5.1.1", "judy@example.net": "5.1.1" },
  },
  "exchange-ndr-dsn.eml": {
    recognized: true,
    format: "rfc3464",
    permanent: ["kate@example.com"],
    temporary: [],
    status: { "kate@example.com": "5.1.10" },
  },
  "exchange-ndr-text.eml": {
    recognized: true,
    format: "exchange",
    permanent: ["leo@example.net"],
    temporary: [],
  },
  "gmail-dsn.eml": {
    recognized: true,
    format: "rfc3464",
    permanent: ["mallory.fwd@example.com"],
    temporary: [],
    status: { "mallory.fwd@example.com": "5.1.1" },
  },
  "yahoo-plain.eml": {
    recognized: true,
    format: "plain",
    permanent: ["niaj@example.com"],
    temporary: [],
    reasons: { "niaj@example.com": "userunknown" },
  },
  "sendmail-mixed.eml": {
    recognized: true,
    format: "rfc3464",
    // relaying refused (5.7.1) is about our route, not the member's mailbox: soft
    permanent: ["olivia@example.com"],
    temporary: ["peggy@example.com", "rupert@example.net"],
    status: { "olivia@example.com": "5.1.1", "peggy@example.com": "5.7.1", "rupert@example.net": "4.4.1" },
    reasons: { "peggy@example.com": "norelaying", "rupert@example.net": "delayed" },
  },
  "sendmail-text.eml": {
    recognized: true,
    format: "plain",
    permanent: ["sam@example.net"],
    temporary: [],
    status: { "sam@example.net": "5.1.1" },
  },
  "postfix-old-text.eml": {
    recognized: true,
    format: "postfix-old",
    permanent: ["sybil@example.com", "trent@example.com"],
    temporary: [],
  },
  "plain-could-not-deliver.eml": {
    recognized: true,
    format: "plain",
    permanent: ["Xavier@example.com"],
    temporary: ["walter@example.com"],
    reasons: { "walter@example.com": "mailboxfull", "Xavier@example.com": "hostunknown" },
  },
  "ooo-autoreply.eml": {
    recognized: false,
    format: "none",
    permanent: [],
    temporary: [],
    reason: "automatic reply",
  },
  "vacation-autoreply.eml": {
    recognized: false,
    format: "none",
    permanent: [],
    temporary: [],
    reason: "automatic reply",
  },
  "ordinary.eml": {
    recognized: false,
    format: "none",
    permanent: [],
    temporary: [],
    reason: "does not come from a mail system",
  },
  "success-dsn.eml": {
    recognized: false,
    format: "rfc3464",
    permanent: [],
    temporary: [],
    reason: "no failed or delayed recipient",
  },
};

function expectScan(scan: BounceScan, e: Expected): void {
  expect(scan.recognized).toBe(e.recognized);
  expect(scan.format).toBe(e.format);
  expect(scan.permanent).toEqual(e.permanent);
  expect(scan.temporary).toEqual(e.temporary);
  const got = scan.details.map((d) => `${d.kind}:${d.address}`).sort();
  const want = [
    ...e.permanent.map((a) => `permanent:${a}`),
    ...e.temporary.map((a) => `temporary:${a}`),
  ].sort();
  expect(got).toEqual(want);
  for (const [address, status] of Object.entries(e.status ?? {})) {
    expect(scan.details.find((d) => d.address === address)?.status, address).toBe(status);
  }
  for (const [address, reason] of Object.entries(e.reasons ?? {})) {
    expect(scan.details.find((d) => d.address === address)?.reason, address).toBe(reason);
  }
  for (const d of scan.details) expect(d.reason, d.address).toBeDefined();
  if (e.reason !== undefined) expect(scan.reason).toContain(e.reason);
  if (e.recognized) expect(scan.reason).toBeUndefined();
}

describe("scanBounce on the fixtures", () => {
  it("has an expectation for every fixture, and at least 12 fixtures", () => {
    const files = readdirSync(FIXTURES)
      .filter((f) => f.endsWith(".eml"))
      .sort();
    expect(files).toEqual(Object.keys(EXPECTED).sort());
    expect(files.length).toBeGreaterThanOrEqual(12);
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`${name}: ${expected.recognized ? [...expected.permanent, ...expected.temporary].join(", ") : "not a bounce"}`, async () => {
      expectScan(await scanBounce(fixture(name)), expected);
    });
  }

  it("gives every detail a source, and DSN details their action", async () => {
    const scan = await scanBounce(fixture("sendmail-mixed.eml"));
    expect(scan.details.map((d) => [d.source, d.action])).toEqual([
      ["Original-Recipient", "failed"],
      ["Original-Recipient", "failed"],
      ["Original-Recipient", "delayed"],
    ]);
    const gmail = await scanBounce(fixture("gmail-dsn.eml"));
    expect(gmail.details[0]?.source).toBe("Final-Recipient");
    expect(gmail.details[0]?.diagnostic).toMatch(
      /^550 5\.1\.1 <mallory\.fwd@example\.com>: Recipient address rejected/,
    );
  });

  it("reads the notification, never the returned message", async () => {
    // each of these fixtures has a tempting line in its returned copy
    for (const name of [
      "postfix-failed.eml",
      "exim-failed.eml",
      "qmail.eml",
      "postfix-old-text.eml",
      "plain-could-not-deliver.eml",
    ]) {
      const scan = await scanBounce(fixture(name));
      const all = [...scan.permanent, ...scan.temporary];
      for (const bait of [
        "zed@example.com",
        "ursula@example.com",
        "mallet@example.com",
        "victor@example.com",
        "yolanda@example.com",
      ]) {
        expect(all, name).not.toContain(bait);
      }
    }
  });

  it("falls back to the Exchange text when the DSN part is lost on the way", async () => {
    const text = fixture("exchange-ndr-dsn.eml").toString("latin1");
    const boundary = "--8f2d0b5e-3c1a-4e8a-9d4f-2b7c6a1e0f93";
    const start = text.indexOf(`${boundary}\r\nContent-Type: message/delivery-status`);
    const end = text.indexOf(`${boundary}\r\nContent-Type: text/rfc822-headers`);
    expect(start).toBeGreaterThan(0);
    const stripped = Buffer.from(text.slice(0, start) + text.slice(end), "latin1");
    const scan = await scanBounce(stripped);
    expect(scan).toMatchObject({
      recognized: true,
      format: "exchange",
      permanent: ["kate@example.com"],
      temporary: [],
    });
    expect(scan.details[0]?.status).toBe("5.1.10");
    expect(scan.details[0]?.diagnostic).toContain("RESOLVER.ADR.RecipientNotFound");
  });

  it("falls back to the Postfix notification text when its DSN part is gone", async () => {
    const text = fixture("postfix-delayed.eml")
      .toString("latin1")
      .replace("Content-Type: message/delivery-status", "Content-Type: text/x-lost");
    const scan = await scanBounce(Buffer.from(text, "latin1"));
    expect(scan).toMatchObject({
      recognized: true,
      format: "postfix-old",
      permanent: [],
      temporary: ["erin@example.com"],
    });
  });
});

/** A DSN with the given per-recipient block, for the classification rules. */
function dsn(block: string, notice = "Delivery report follows."): Buffer {
  return Buffer.from(
    [
      "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)",
      "To: dev-bounces@example.org",
      "Subject: Undelivered Mail Returned to Sender",
      "MIME-Version: 1.0",
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
      "",
      "--b1",
      "Content-Type: text/plain",
      "",
      notice,
      "",
      "--b1",
      "Content-Type: message/delivery-status",
      "",
      "Reporting-MTA: dns; mx.example.net",
      "",
      block,
      "",
      "--b1--",
      "",
    ].join("\r\n"),
  );
}

describe("RFC 3464 rules", () => {
  it.each([
    // permanent only when the address is gone; the MTA giving up on anything else is a soft bounce
    ["Action: failed\nStatus: 4.4.7", "temporary", "expired"],
    ["Action: delayed\nStatus: 4.2.2", "temporary", "delayed"],
    ["Action: failed (bad destination mailbox address)\nStatus: 5.1.1", "permanent", "userunknown"],
    ["Status: 5.1.1", "permanent", "userunknown"], // no Action: Status decides
    ["Status: 4.2.2 (mailbox full)", "temporary", "delayed"],
    [
      "Action: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full",
      "temporary",
      "mailboxfull",
    ],
    ["Action: failed\nStatus: 5.1.2\nDiagnostic-Code: smtp; 550 Host unknown", "permanent", "hostunknown"],
    ["Action: failed\nStatus: 5.4.7", "temporary", "expired"],
    [
      "Action: bogus\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 No such user (in reply to RCPT TO)",
      "permanent",
      "userunknown",
    ],
    [
      "Action: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 5.7.1 Message rejected as spam",
      "temporary",
      "spamdetected",
    ],
    [
      "Action: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 unknown user (in reply to end of DATA command)",
      "temporary",
      "filtered",
    ],
    [
      "Action: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 Sender address rejected (after MAIL FROM)",
      "temporary",
      "rejected",
    ],
    [
      "Action: failed\nStatus: 4.0.0\nDiagnostic-Code: Host not found, try again",
      "temporary",
      "networkerror",
    ],
    ["Diagnostic-Code: smtp; 452 4.2.2 over quota", "temporary", "delayed"], // neither: the reply code
  ])("%j is %s (%s)", async (fields, kind, reason) => {
    const scan = await scanBounce(
      dsn(`Final-Recipient: rfc822; uma@example.com\n${fields}`.replace(/\n/g, "\r\n")),
    );
    expect(scan.details).toHaveLength(1);
    expect(scan.details[0]).toMatchObject({ address: "uma@example.com", kind, reason });
  });

  it.each(["delivered", "relayed", "expanded"])("Action: %s is no bounce", async (action) => {
    const scan = await scanBounce(
      dsn(`Final-Recipient: rfc822; uma@example.com\r\nAction: ${action}\r\nStatus: 2.0.0`),
    );
    expect(scan).toMatchObject({ recognized: false, format: "rfc3464", permanent: [], temporary: [] });
  });

  it("prefers Original-Recipient only when it is rfc822 and valid", async () => {
    const a = await scanBounce(
      dsn(
        "Original-Recipient: rfc822;Uma@Example.COM\r\nFinal-Recipient: rfc822; uma.b@mail.example.com\r\nAction: failed\r\nStatus: 5.1.1",
      ),
    );
    expect(a.permanent).toEqual(["Uma@example.com"]);
    const b = await scanBounce(
      dsn(
        "Original-Recipient: x400; c=us;a=;p=example;o=mail;s=uma\r\nFinal-Recipient: rfc822; <uma@example.com>\r\nAction: failed\r\nStatus: 5.1.1",
      ),
    );
    expect(b.permanent).toEqual(["uma@example.com"]);
    expect(b.details[0]?.source).toBe("Final-Recipient");
    // no address-type at all, seen from some gateways
    const c = await scanBounce(dsn("Final-Recipient: <uma@example.com>\r\nAction: failed\r\nStatus: 5.1.1"));
    expect(c.permanent).toEqual(["uma@example.com"]);
  });

  it("de-duplicates, and a permanent failure outranks a temporary one for the same address", async () => {
    const scan = await scanBounce(
      dsn(
        [
          "Final-Recipient: rfc822; uma@example.com",
          "Action: delayed",
          "Status: 4.4.1",
          "",
          "Final-Recipient: rfc822; uma@EXAMPLE.com",
          "Action: failed",
          "Status: 5.1.1",
          "",
          "Final-Recipient: rfc822; <uma@example.com>",
          "Action: failed",
          "Status: 5.1.1",
        ].join("\r\n"),
      ),
    );
    expect(scan.permanent).toEqual(["uma@example.com"]);
    expect(scan.temporary).toEqual([]);
    expect(scan.details).toHaveLength(1);
    expect(scan.details[0]?.status).toBe("5.1.1");
    // local parts are kept as written: UMA@ and uma@ may be different mailboxes
    const two = await scanBounce(
      dsn(
        "Final-Recipient: rfc822; uma@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\nFinal-Recipient: rfc822; UMA@example.com\r\nAction: failed\r\nStatus: 5.1.1",
      ),
    );
    expect(two.permanent).toEqual(["uma@example.com", "UMA@example.com"]);
  });

  it("tolerates a missing blank line between recipient blocks", async () => {
    const scan = await scanBounce(
      dsn(
        "Final-Recipient: rfc822; uma@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\nFinal-Recipient: rfc822; vic@example.com\r\nAction: delayed",
      ),
    );
    expect(scan.permanent).toEqual(["uma@example.com"]);
    expect(scan.temporary).toEqual(["vic@example.com"]);
  });

  it("keeps diagnostics printable", async () => {
    const scan = await scanBounce(
      dsn(
        "Final-Recipient: rfc822; uma@example.com\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 \x1b[31mred\x1b[0m\x07 no",
      ),
    );
    expect(scan.details[0]?.diagnostic).toBe("550 [31mred [0m no");
  });
});

describe("robustness", () => {
  it("returns recognized=false for binary junk, empty input and non-messages", async () => {
    let seed = 12345;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    const binary = Buffer.from(Uint8Array.from({ length: 256 * 1024 }, rand));
    for (const input of [binary, Buffer.alloc(0), Buffer.from("just some words\n"), Buffer.from("\n\n\n")]) {
      const scan = await scanBounce(input);
      expect(scan.recognized).toBe(false);
      expect(scan.details).toEqual([]);
      expect(typeof scan.reason).toBe("string");
    }
  });

  it("returns recognized=false for truncated MIME", async () => {
    const full = fixture("postfix-failed.eml").toString("latin1");
    // cut inside the top-level headers, inside the notice's part headers, and before any part
    for (const marker of [
      "Content-Type: multipart/report",
      "Content-Description: Notif",
      "This is a MIME-encapsulated",
    ]) {
      const cut = Buffer.from(full.slice(0, full.indexOf(marker) + marker.length), "latin1");
      const scan = await scanBounce(cut);
      expect(scan.recognized, marker).toBe(false);
    }
  });

  it("survives every prefix of every fixture", async () => {
    const files = Object.keys(EXPECTED).map((n) => fixture(n));
    await fc.assert(
      fc.asyncProperty(
        fc.nat(files.length - 1),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (i, frac) => {
          const buf = files[i] as Buffer;
          const scan = await scanBounce(buf.subarray(0, Math.floor(buf.length * frac)));
          expect(typeof scan.recognized).toBe("boolean");
          expect(scan.permanent.every((a) => a.includes("@"))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("survives arbitrary bytes and arbitrary MIME-ish text", async () => {
    const mimeish = fc.array(
      fc.oneof(
        fc.constantFrom(
          "--b",
          "--b--",
          "Content-Type: multipart/mixed; boundary=b",
          "Content-Type: message/delivery-status",
          "",
          "Final-Recipient: rfc822; a@example.com",
          "Action: failed",
          "<a@example.com>:",
          "=?utf-8?B?",
        ),
        fc.string({ maxLength: 40 }),
      ),
      { maxLength: 60 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), mimeish, async (bytes, lines) => {
        await scanBounce(Buffer.from(bytes));
        await scanBounce(
          Buffer.from(
            [
              "From: MAILER-DAEMON@example.net",
              "Content-Type: multipart/mixed; boundary=b",
              "",
              ...lines,
            ].join("\n"),
          ),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("returns recognized=false on 5 MB of garbage, and looks at no more than MAX_SCAN_BYTES", async () => {
    const lines: string[] = [
      "From: MAILER-DAEMON@example.net",
      'Content-Type: multipart/report; boundary="g"',
      "",
    ];
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    let size = 0;
    while (size < 5 * 1024 * 1024) {
      const r = rand() % 5;
      const line =
        r === 0
          ? "--g"
          : r === 1
            ? "Content-Type: text/plain"
            : "x".repeat(rand() % 300) + "@" + "y.".repeat(rand() % 50) + "<<" + "=".repeat(rand() % 20);
      lines.push(line);
      size += line.length + 1;
    }
    const garbage = Buffer.from(lines.join("\n"));
    expect(garbage.length).toBeGreaterThan(5 * 1024 * 1024);
    const scan = await scanBounce(garbage);
    expect(scan.recognized).toBe(false);
    expect(MAX_SCAN_BYTES).toBeLessThan(garbage.length);
  });

  it("gets through lines crafted against each layout's patterns (no backtracking blow-up)", async () => {
    const intros = [
      "Hi. This is the qmail-send program at mx.example.com.",
      "This message was created automatically by mail delivery software.",
      "The following address(es) failed:",
      "This is the mail system at host mx.example.net.",
      "did not reach the following recipient(s):",
      "Delivery has failed to these recipients or groups:",
      "Sorry, we were unable to deliver your message to the following address.",
      "   ----- The following addresses had permanent fatal errors -----",
      "Your message could not be delivered to:",
    ];
    const nasty = [
      "a@".repeat(480),
      "<mailto:".repeat(120),
      "Your message to " + "x".repeat(900) + "@",
      "  " + "@a".repeat(480),
      " on 1".repeat(190),
      "(generated from " + ")x".repeat(400),
      "<" + "a@b.".repeat(240) + ">:",
    ];
    const body: string[] = [];
    for (let i = 0; body.join("\n").length < 600 * 1024; i++) {
      body.push(
        i % 40 === 0 ? (intros[(i / 40) % intros.length] as string) : (nasty[i % nasty.length] as string),
      );
    }
    for (const type of ["text/plain", "text/html"]) {
      const html = type === "text/html" ? "<br><script".repeat(20_000) : "";
      const msg = [
        "From: MAILER-DAEMON@mx.example.com",
        `Content-Type: ${type}`,
        "",
        html + body.join("\n"),
      ].join("\n");
      const scan = await scanBounce(Buffer.from(msg));
      expect(scan.recognized, type).toBe(false);
    }
  });

  it("does not recurse without bound on deeply nested multiparts", async () => {
    const depth = 5000;
    const head: string[] = [
      "From: MAILER-DAEMON@example.net",
      'Content-Type: multipart/mixed; boundary="b0"',
      "",
    ];
    for (let i = 0; i < depth; i++)
      head.push(`--b${i}`, `Content-Type: multipart/mixed; boundary="b${i + 1}"`, "");
    const scan = await scanBounce(Buffer.from(head.join("\n")));
    expect(scan).toMatchObject({ recognized: false, reason: NO_PATTERN });
  });

  it("ignores a DSN buried deeper than the walk goes, instead of hanging", async () => {
    const parts: string[] = [
      "From: MAILER-DAEMON@example.net",
      'Content-Type: multipart/mixed; boundary="b0"',
      "",
    ];
    for (let i = 0; i < 20; i++)
      parts.push(`--b${i}`, `Content-Type: multipart/mixed; boundary="b${i + 1}"`, "");
    parts.push(
      "--b20",
      "Content-Type: message/delivery-status",
      "",
      "Final-Recipient: rfc822; a@example.com",
      "Action: failed",
      "",
    );
    const scan = await scanBounce(Buffer.from(parts.join("\n")));
    expect(scan.recognized).toBe(false);
  });
});

describe("text heuristics", () => {
  it("reads an Exchange 2003 notice that names the recipient by display name only", async () => {
    // the text part of an Exchange 2003 NDR whose delivery-status part a gateway dropped
    const msg = [
      "From: System Administrator <postmaster@example.net>",
      "To: dev-bounces@example.org",
      "Subject: Undeliverable: [dev] Release 2.4 planning",
      "Content-Type: text/plain; charset=iso-8859-1",
      "",
      "Your message did not reach some or all of the intended recipients.",
      "",
      "      Subject:\t[dev] Release 2.4 planning",
      "      Sent:\t3/11/2025 9:14 AM",
      "",
      "The following recipient(s) cannot be reached:",
      "",
      "      'Leo Tolstoy' on 3/11/2025 9:16 AM",
      "            The e-mail address could not be found.  Perhaps the recipient moved to a different e-mail organization, or there was a mistake in the address.  Check the address and try again.",
      "            <gw.example.net #5.1.1 smtp;550 5.1.1 <leo@example.net>... User unknown>",
      "",
      "      mia@example.net on 3/11/2025 9:16 AM",
      "            The recipient's mailbox is full and can't accept messages now.",
      "            <gw.example.net #5.2.2 smtp;552 5.2.2 Mailbox full>",
      "",
    ].join("\r\n");
    const scan = await scanBounce(Buffer.from(msg, "latin1"));
    expect(scan).toMatchObject({
      recognized: true,
      format: "exchange",
      permanent: ["leo@example.net"],
      temporary: ["mia@example.net"],
    });
    expect(scan.details.map((d) => d.reason)).toEqual(["userunknown", "mailboxfull"]);
    expect(scan.details.map((d) => d.status)).toEqual(["5.1.1", "5.2.2"]);
  });

  it("uses X-Failed-Recipients when the text gives no address", async () => {
    const msg = [
      "From: Mail Delivery System <Mailer-Daemon@mail.example.net>",
      "To: dev-bounces@example.org",
      "Subject: Mail delivery failed: returning message to sender",
      "X-Failed-Recipients: wendy@example.com,",
      "  xena@Example.NET",
      "",
      "Something went wrong with your message.",
      "",
    ].join("\n");
    const scan = await scanBounce(Buffer.from(msg));
    expect(scan).toMatchObject({
      recognized: true,
      format: "plain",
    });
    // the header says who, not why: no stated reason is a soft bounce (as Sisimai reads it)
    expect(scan.details.map((d) => [d.address, d.reason])).toEqual([
      ["wendy@example.com", "undefined"],
      ["xena@example.net", "undefined"],
    ]);
    expect(scan.details[0]?.source).toBe("X-Failed-Recipients");
  });

  it("says which layout matched when it found no address", async () => {
    const msg = [
      "From: MAILER-DAEMON@mx.example.com",
      "Subject: failure notice",
      "",
      "Hi. This is the qmail-send program at mx.example.com.",
      "Sorry.",
      "",
      "<>:",
      "bad",
      "",
    ].join("\n");
    const scan = await scanBounce(Buffer.from(msg));
    expect(scan).toMatchObject({ recognized: false, format: "qmail" });
    expect(scan.reason).toContain("no recipient address");
  });

  it("reads Gmail's old plain-text notice with its technical details", async () => {
    const msg = [
      "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
      "Subject: Delivery Status Notification (Failure)",
      "Content-Type: text/plain; charset=ISO-8859-1",
      "Content-Transfer-Encoding: quoted-printable",
      "",
      "Delivery to the following recipient failed permanently:",
      "",
      "     yuri@example.com",
      "",
      "Technical details of permanent failure:=20",
      "Google tried to deliver your message, but it was rejected by the recipient =",
      "domain. The error that the other server returned was: 550 5.1.1 user unknown.",
      "",
      "----- Original message -----",
      "",
      "To: zoe@example.com",
      "",
    ].join("\n");
    const scan = await scanBounce(Buffer.from(msg));
    expect(scan).toMatchObject({ recognized: true, format: "plain", permanent: ["yuri@example.com"] });
    expect(scan.details[0]?.status).toBe("5.1.1");
  });
});
