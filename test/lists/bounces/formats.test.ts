/**
 * The readers added for issue 14, each on a message built here in its format (not copied from any
 * collection): complaints (ARF, JMRP), Amazon SES notifications, delivery-status fields in text, the
 * generic notice reader (with its delay rule), a notice returning a notice, a misstated boundary, and
 * oversize fields.
 */
import { describe, expect, it } from "vitest";
import { scanBounce } from "../../../src/lists/bounces/detect.js";

const msg = (headers: string[], body: string[]): Buffer =>
  Buffer.from([...headers, "", ...body, ""].join("\r\n"), "latin1");

describe("complaints", () => {
  it("reads an RFC 5965 feedback report: the complainant and the type, never a bounce", async () => {
    const scan = await scanBounce(
      msg(
        [
          "From: fbl@isp.example.net",
          "To: abuse@example.org",
          "Subject: Abuse report",
          'Content-Type: multipart/report; report-type=feedback-report; boundary="b"',
        ],
        [
          "--b",
          "Content-Type: text/plain",
          "",
          "This is an email abuse report.",
          "--b",
          "Content-Type: message/feedback-report",
          "",
          "Feedback-Type: abuse",
          "User-Agent: Example-FBL/1.0",
          "Version: 1",
          "--b",
          "Content-Type: message/rfc822",
          "",
          "From: dev@example.org",
          "To: Nina <nina@example.net>",
          "Subject: [dev] news",
          "",
          "hello",
          "--b--",
        ],
      ),
    );
    expect(scan).toMatchObject({
      recognized: false,
      notBounce: "complaint",
      complaint: { address: "nina@example.net", feedbackType: "abuse" },
      permanent: [],
      temporary: [],
    });
  });

  it("reads Hotmail's JMRP complaint (a returned message with X-HmXmrOriginalRecipient)", async () => {
    const scan = await scanBounce(
      msg(
        [
          "From: staff@hotmail.example",
          "Subject: complaint about message from 192.0.2.1",
          'Content-Type: multipart/mixed; boundary="b"',
        ],
        [
          "--b",
          "Content-Type: message/rfc822",
          "",
          "X-HmXmrOriginalRecipient: oscar@example.net",
          "From: dev@example.org",
          "To: oscar@example.net",
          "",
          "hi",
          "--b--",
        ],
      ),
    );
    expect(scan.notBounce).toBe("complaint");
    expect(scan.complaint?.address).toBe("oscar@example.net");
  });
});

describe("Amazon SES notifications", () => {
  const sns = (event: object): Buffer =>
    msg(
      [
        "From: no-reply@sns.amazonaws.example",
        "Subject: AWS Notification Message",
        "Content-Type: text/plain",
      ],
      [JSON.stringify({ Type: "Notification", Message: JSON.stringify(event) }, null, 2)],
    );

  it("reads a bounce, with status and diagnostic", async () => {
    const scan = await scanBounce(
      sns({
        notificationType: "Bounce",
        bounce: {
          bounceType: "Permanent",
          bouncedRecipients: [
            {
              emailAddress: "pia@example.net",
              action: "failed",
              status: "5.1.1",
              diagnosticCode: "smtp; 550 5.1.1 user unknown",
            },
          ],
        },
        mail: { source: "dev-bounces@example.org", destination: ["pia@example.net"] },
      }),
    );
    expect(scan).toMatchObject({ recognized: true, format: "ses", permanent: ["pia@example.net"] });
    expect(scan.details[0]).toMatchObject({ reason: "userunknown", status: "5.1.1" });
  });

  it("tells deliveries and complaints from bounces", async () => {
    const delivered = await scanBounce(sns({ notificationType: "Delivery", delivery: {} }));
    expect(delivered).toMatchObject({ recognized: false, notBounce: "no-failure" });
    const complaint = await scanBounce(
      sns({
        notificationType: "Complaint",
        complaint: {
          complainedRecipients: [{ emailAddress: "quinn@example.net" }],
          complaintFeedbackType: "abuse",
        },
      }),
    );
    expect(complaint).toMatchObject({
      notBounce: "complaint",
      complaint: { address: "quinn@example.net", feedbackType: "abuse" },
    });
  });
});

const SYSTEM = [
  "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>",
  "To: dev-bounces@example.org",
];

describe("the generic notice reader", () => {
  it("reads a session transcript and takes the recipients, not the sender", async () => {
    const scan = await scanBounce(
      msg(
        [...SYSTEM, "Subject: Returned mail: User unknown"],
        [
          "   ----- Transcript of session follows -----",
          "While talking to mail.example.com:",
          ">>> RCPT To:<rita@example.com>",
          "<<< 550 Requested User Mailbox not found. No such user here.",
          "550 <rita@example.com>... User unknown",
          "554 <sam@example.net>... 550 Host unknown (Authoritative answer from name server)",
          "",
          "   ----- Unsent message follows -----",
          "From: dev@example.org",
          "To: rita@example.com, sam@example.net, tom@example.com",
          "",
          "tom@example.com: mentioned in the returned body, not a recipient",
        ],
      ),
    );
    expect(scan.details.map((d) => [d.address, d.kind, d.reason])).toEqual([
      ["rita@example.com", "permanent", "userunknown"],
      ["sam@example.net", "permanent", "hostunknown"],
    ]);
  });

  it("takes an address alone on its line after the reason line", async () => {
    const scan = await scanBounce(
      msg(
        [...SYSTEM, "Subject: Undeliverable message"],
        [
          "------- Failure Reasons  --------",
          "",
          "User not listed in public Name & Address Book",
          "uma@example.com",
          "",
          "------- Returned Message --------",
          "To: uma@example.com",
        ],
      ),
    );
    expect(scan.details).toMatchObject([
      { address: "uma@example.com", kind: "permanent", reason: "userunknown" },
    ]);
  });

  it("falls back to the returned message's single To when the notice names nobody", async () => {
    const scan = await scanBounce(
      msg(
        [...SYSTEM, "Subject: Returned mail: Cannot send message for 5 days"],
        [
          "   ----- Transcript of session follows -----",
          "421 mx.example.com (smtp)... Deferred: Connection timed out",
          "",
          "   ----- Unsent message follows -----",
          "From: dev@example.org",
          "To: vera@example.com",
          "",
          "hello",
        ],
      ),
    );
    expect(scan.details).toMatchObject([
      { address: "vera@example.com", source: "returned message To", kind: "temporary" },
    ]);
  });

  it("gives delays, never permanent failures, for a notice that only warns", async () => {
    const scan = await scanBounce(
      msg(
        [...SYSTEM, "Subject: Warning: message delayed"],
        [
          "Your message to <wes@example.com> has not yet been delivered.",
          "550 5.1.1 user unknown at the moment; the server will retry for 4 more days.",
        ],
      ),
    );
    expect(scan.details).toMatchObject([
      { address: "wes@example.com", kind: "temporary", reason: "delayed" },
    ]);
  });

  it("never reads a person's message", async () => {
    const scan = await scanBounce(
      msg(
        ["From: Ann <ann@example.com>", "To: dev@example.org", "Subject: my mail to xavier"],
        ["My mail to xavier@example.net failed with 550 user unknown, any idea?"],
      ),
    );
    expect(scan.recognized).toBe(false);
  });
});

describe("other layouts", () => {
  it("reads delivery-status fields written into the notice's text", async () => {
    const scan = await scanBounce(
      msg(
        [...SYSTEM, "Subject: Delivery Status Notification (Failure)", "Content-Type: text/plain"],
        [
          "An error occurred while trying to deliver the mail to the following recipients:",
          "yael@example.com",
          "",
          "Action: failed",
          "Final-Recipient: rfc822; yael@example.com",
          "Diagnostic-Code: smtp; 550 5.2.2 <yael@example.com>... Mailbox full",
          "Status: 5.2.2",
        ],
      ),
    );
    expect(scan.details).toMatchObject([
      { address: "yael@example.com", kind: "temporary", reason: "mailboxfull", status: "5.2.2" },
    ]);
  });

  it("reads a multipart whose header names a boundary the body does not use", async () => {
    const scan = await scanBounce(
      msg(
        [
          ...SYSTEM,
          "Subject: Undelivered Mail Returned to Sender",
          'Content-Type: multipart/report; report-type=delivery-status; boundary="redacted"',
        ],
        [
          "--real",
          "Content-Type: message/delivery-status",
          "",
          "Reporting-MTA: dns; mx.example.net",
          "",
          "Final-Recipient: rfc822; zack@example.com",
          "Action: failed",
          "Status: 5.1.1",
          "--real--",
        ],
      ),
    );
    expect(scan).toMatchObject({ format: "rfc3464", permanent: ["zack@example.com"] });
  });

  it("reads the inner notice of a notice that returns a notice", async () => {
    const scan = await scanBounce(
      msg(
        [...SYSTEM, "Subject: Returned mail: see transcript", 'Content-Type: multipart/mixed; boundary="o"'],
        [
          "--o",
          "Content-Type: text/plain",
          "",
          "----- The following addresses had permanent delivery errors -----",
          "--o",
          "Content-Type: message/rfc822",
          "",
          "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.net>",
          "To: dev-bounces@example.org",
          "Subject: Returned mail: User unknown",
          "",
          "   ----- The following addresses had permanent fatal errors -----",
          "<abe@example.com>",
          "    (reason: 550 5.1.1 <abe@example.com>... User unknown)",
          "--o--",
        ],
      ),
    );
    expect(scan.details).toMatchObject([
      { address: "abe@example.com", kind: "permanent", reason: "userunknown" },
    ]);
  });

  it("reads a 250 KB Final-Recipient and a 250 KB Diagnostic-Code without finding junk", async () => {
    const dsnWith = (block: string): Buffer =>
      msg(
        [
          ...SYSTEM,
          "Subject: Undelivered Mail Returned to Sender",
          'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        ],
        [
          "--b",
          "Content-Type: message/delivery-status",
          "",
          "Reporting-MTA: dns; mx.example.net",
          "",
          block,
          "--b--",
        ],
      );
    const a = await scanBounce(
      dsnWith(`Final-Recipient: rfc822; ${"<".repeat(250_000)}bea@example.com\r\nAction: failed`),
    );
    expect(a.details).toEqual([]);
    const b = await scanBounce(
      dsnWith(
        `Final-Recipient: rfc822; bea@example.com\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 ${"5.1.1 user unknown ".repeat(13_000)}`,
      ),
    );
    expect(b.details).toHaveLength(1);
    expect(b.details[0]).toMatchObject({ address: "bea@example.com", reason: "userunknown" });
    expect((b.details[0]?.diagnostic ?? "").length).toBeLessThanOrEqual(500);
  });
});
