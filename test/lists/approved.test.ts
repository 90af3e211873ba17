/** `Approved: PASSWORD` found and removed on raw bytes (src/lists/approved.ts). */
import { describe, expect, it } from "vitest";
import { findApproval, stripApprovedHeaders } from "../../src/lists/approved.js";

const msg = (head: string[], body: string): Buffer => Buffer.from([...head, "", body].join("\r\n"), "latin1");

describe("findApproval", () => {
  it("reads an Approved: or Approve: header field and removes every such field", () => {
    const raw = msg(
      ["From: m@example.org", "Approved: s3cret pw", "Subject: hi", "approve: other"],
      "text\r\n",
    );
    const a = findApproval(raw);
    expect(a?.password).toBe("s3cret pw");
    expect(a?.where).toBe("header");
    expect(a?.stripped.toString()).toBe("From: m@example.org\r\nSubject: hi\r\n\r\ntext\r\n");
  });

  it("reads the first non-blank line of a plain-text body and removes only that line", () => {
    const raw = msg(["From: m@example.org", "Subject: hi"], "\r\nApproved: pw\r\nHello\r\nApproved: no\r\n");
    const a = findApproval(raw);
    expect(a).toMatchObject({ password: "pw", where: "body" });
    expect(a?.stripped.toString()).toBe(
      "From: m@example.org\r\nSubject: hi\r\n\r\n\r\nHello\r\nApproved: no\r\n",
    );
  });

  it("ignores a body line that is not first, and bodies it cannot read as sent", () => {
    expect(findApproval(msg(["Subject: x"], "Hello\r\nApproved: pw\r\n"))).toBeNull();
    expect(findApproval(msg(["Content-Transfer-Encoding: base64"], "Approved: pw\r\n"))).toBeNull();
    expect(findApproval(msg(['Content-Type: multipart/mixed; boundary="b"'], "Approved: pw\r\n"))).toBeNull();
    expect(findApproval(msg(["Subject: x"], "Approved:\r\n"))).toBeNull();
  });

  it("stripApprovedHeaders returns the same bytes when there is nothing to strip", () => {
    const raw = msg(["Subject: x"], "Approved: pw\r\n");
    expect(stripApprovedHeaders(raw)).toBe(raw);
  });

  it("is linear on hostile input (a long header line of colons and blanks)", () => {
    const raw = msg(["Approved:" + " :".repeat(200_000)], "\r\n" + "Approved:".repeat(100_000));
    expect(findApproval(raw)?.where).toBe("header");
  });
});
