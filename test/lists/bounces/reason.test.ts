import { describe, expect, it } from "vitest";
import {
  classifyReason,
  classifyReply,
  isHardReason,
  reasonFromStatus,
  reasonFromText,
  smtpCommand,
} from "../../../src/lists/bounces/reason.js";

describe("bounce reasons", () => {
  it.each([
    [
      "550 5.1.1 <a@b.example>: Recipient address rejected: User unknown in local recipient table",
      undefined,
      "userunknown",
    ],
    ["552 5.2.2 Mailbox full", undefined, "mailboxfull"],
    [
      "550 Requested action not taken: mailbox unavailable (in reply to RCPT TO command)",
      undefined,
      "userunknown",
    ],
    [
      "Host or domain name not found. Name service error for name=example.invalid type=A",
      "5.4.4",
      "hostunknown",
    ],
    ["Host not found, try again", undefined, "networkerror"],
    [
      "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
      "5.7.1",
      "blocked",
    ],
    ["550 5.7.1 Message rejected as spam by Content Filtering", "5.7.1", "spamdetected"],
    ["552 5.3.4 Message size exceeds fixed limit", "5.3.4", "mesgtoobig"],
    ["550 5.0.0 unknown user (in reply to end of DATA command)", "5.0.0", "filtered"],
    ["553 5.1.8 Domain of sender address does not exist", "5.1.8", "rejected"],
    ["554 5.7.1 <x@y.example>: Relay access denied", "5.7.1", "norelaying"],
    ["retry timeout exceeded", undefined, "expired"],
    ["Connection timed out", "4.4.1", "networkerror"],
    ["550 5.2.2 <a@b.example>... User unknown, mailbox over quota", "5.2.2", "mailboxfull"],
    ["", undefined, "undefined"],
    // a provider's documented code outranks a bare status (Orange / La Poste)
    ["550 5.5.0 Adresse destinataire invalide. Invalid recipient. LPN007_416", "5.5.0", "userunknown"],
    ["550 5.5.0 Le compte du destinataire est bloque. LPN007_426", "5.5.0", "suspend"],
    ["Mail rejete. Mail rejected. OFR_506 [506]", undefined, "spamdetected"],
    // a domain, not an address, does not exist
    [
      "SMTP error from remote mail server after end of data: 553 example.com does not exist",
      undefined,
      "hostunknown",
    ],
    ["550 user kijitora does not exist (in reply to RCPT TO command)", undefined, "userunknown"],
    // a policy status with user-unknown words is a filter, whatever the command
    ["550 5.7.1 550 User Unknown (in reply to RCPT TO command)", "5.7.1", "filtered"],
    // a refused MAIL FROM: the cause its words name, else our sender
    [
      "after MAIL FROM:<a@b.example>: 550 5.7.1 Client host blocked using zen.spamhaus.org",
      undefined,
      "blocked",
    ],
    ["after MAIL FROM:<a@b.example>: 550 5.1.0 unknown user", undefined, "rejected"],
    // generic refusal words give way to a specific cause
    ["554 5.7.9 Message not accepted for policy reasons", "5.7.9", "policyviolation"],
    ["550 Denied by policy", undefined, "policyviolation"],
  ] as const)("%j (status %s) is %s", (text, status, reason) => {
    expect(classifyReason({ text, status })).toBe(reason);
  });

  it("reads the SMTP command across folded lines", () => {
    expect(smtpCommand("said: 550 no such user (in reply to RCPT\n    TO command)")).toBe("RCPT");
    expect(smtpCommand("SMTP error from remote mail server after end of data: 550 x")).toBe("DATA");
    expect(smtpCommand("SMTP error from remote mail server after MAIL FROM:<a@b.example>")).toBe("MAIL");
    expect(smtpCommand("550 user unknown")).toBeUndefined();
    // an envelope listing is no command; m-FILTER writes the command under its own heading
    expect(smtpCommand("Message details: MAIL FROM: a@b.example RCPT TO: c@d.example")).toBe("MAIL");
    expect(smtpCommand("-------server message\n550 unknown user\n-------SMTP command\nDATA")).toBe("DATA");
  });

  it("maps status codes on their own", () => {
    expect(reasonFromStatus("5.1.1")).toBe("userunknown");
    expect(reasonFromStatus("5.2.2")).toBe("mailboxfull");
    expect(reasonFromStatus("5.0.0")).toBeUndefined();
    expect(reasonFromStatus(undefined)).toBeUndefined();
    expect(reasonFromText("nothing to see here")).toBeUndefined();
  });

  it("calls hard only a gone mailbox or domain", () => {
    expect(isHardReason("userunknown")).toBe(true);
    expect(isHardReason("hostunknown")).toBe(true);
    expect(isHardReason("hasmoved")).toBe(true);
    expect(isHardReason("mailboxfull")).toBe(false);
    expect(isHardReason("blocked")).toBe(false);
    expect(isHardReason("undefined")).toBe(false);
    expect(isHardReason("notaccept", "5.1.10")).toBe(true);
    expect(isHardReason("notaccept", "4.3.2")).toBe(false);
  });

  it("classifies a reply our delivery got, hard or soft by its reason", () => {
    expect(classifyReply("550 5.1.1 <a@b.example>: Recipient address rejected: User unknown")).toEqual({
      reason: "userunknown",
      hard: true,
    });
    expect(classifyReply("552 5.2.2 Mailbox full")).toEqual({ reason: "mailboxfull", hard: false });
    expect(classifyReply("550 permanent failure")).toEqual({ reason: "undefined", hard: false });
  });

  it("stays fast-failing on huge text: only the head is read", () => {
    const text = "x".repeat(2_000_000) + " user unknown";
    expect(reasonFromText(text)).toBeUndefined();
  });
});
