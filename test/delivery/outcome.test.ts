import { describe, expect, it } from "vitest";
import {
  hostErrorOf,
  mergeResults,
  replyKind,
  resultOfError,
  resultOfInfo,
} from "../../src/delivery/outcome.js";

/** An error shaped the way nodemailer's smtp-connection builds them (_formatError). */
function smtpErr(message: string, props: Record<string, unknown>): Error {
  return Object.assign(new Error(message), props);
}

describe("replyKind", () => {
  it("4xx and 552 are temporary, other 5xx permanent", () => {
    expect([421, 450, 451, 452, 552, 550, 551, 553, 554].map(replyKind)).toEqual([
      "temporary",
      "temporary",
      "temporary",
      "temporary",
      "temporary",
      "permanent",
      "permanent",
      "permanent",
      "permanent",
    ]);
    expect(replyKind(undefined)).toBe("temporary");
  });
});

describe("hostErrorOf", () => {
  it("recognises the failures that concern the host", () => {
    expect(hostErrorOf(smtpErr("getaddrinfo ENOTFOUND mx.invalid", { code: "EDNS" }))?.kind).toBe("connect");
    expect(
      hostErrorOf(smtpErr("connect EHOSTUNREACH 10.0.0.1:25", { code: "ESOCKET", syscall: "connect" }))?.kind,
    ).toBe("connect");
    expect(hostErrorOf(smtpErr("Connection timeout", { code: "ETIMEDOUT" }))?.kind).toBe("timeout");
    expect(
      hostErrorOf(
        smtpErr("Error upgrading connection with STARTTLS: 454 no", {
          code: "ETLS",
          response: "454 no",
          responseCode: 454,
        }),
      ),
    ).toEqual({
      kind: "tls",
      message: "TLS failed: 454 no",
      code: 454,
    });
    expect(
      hostErrorOf(
        smtpErr("Invalid login: 535 bad", { code: "EAUTH", response: "535 bad", responseCode: 535 }),
      )?.kind,
    ).toBe("auth");
    expect(
      hostErrorOf(
        smtpErr("Server terminates connection: 421 bye", {
          code: "ECONNECTION",
          response: "421 bye",
          responseCode: 421,
          command: "EHLO",
        }),
      ),
    ).toMatchObject({ kind: "greeting", code: 421 });
    expect(
      hostErrorOf(
        smtpErr("Invalid greeting: 554 go away", {
          code: "EPROTOCOL",
          response: "554 go away",
          responseCode: 554,
          command: "CONN",
        }),
      ),
    ).toMatchObject({
      kind: "greeting",
      code: 554,
    });
    expect(hostErrorOf(new Error("Unexpected socket close"))?.kind).toBe("connect");
  });

  it("leaves transaction failures alone", () => {
    expect(hostErrorOf(smtpErr("read ECONNRESET", { code: "ESOCKET", syscall: "read" }))).toBeUndefined();
    expect(
      hostErrorOf(smtpErr("Connection closed unexpectedly", { code: "ECONNECTION", command: "CONN" })),
    ).toBeUndefined();
    expect(
      hostErrorOf(
        smtpErr("Message failed: 451 later", { code: "EMESSAGE", responseCode: 451, command: "DATA" }),
      ),
    ).toBeUndefined();
    expect(hostErrorOf(new Error("Connection pool was closed"))).toBeUndefined();
  });
});

describe("resultOfError / resultOfInfo", () => {
  it("a size refusal before sending is permanent; a closed pool is temporary", () => {
    const big = resultOfError(
      smtpErr("Message size larger than allowed 1000", { code: "EMESSAGE", command: "MAIL FROM" }),
      ["a@x"],
    );
    expect(big.failed).toEqual([
      { recipient: "a@x", kind: "permanent", message: "Message size larger than allowed 1000" },
    ]);
    const closed = resultOfError(new Error("Connection pool was closed"), ["a@x"]);
    expect(closed.failed[0]?.kind).toBe("temporary");
    expect(closed.hostError).toBeUndefined();
  });

  it("a recipient the server never answered for is a temporary failure", () => {
    const r = resultOfInfo({ accepted: ["a@x"], rejected: [] } as { accepted: unknown }, ["a@x", "b@x"]);
    expect(r.accepted).toEqual(["a@x"]);
    expect(r.failed).toMatchObject([{ recipient: "b@x", kind: "temporary" }]);
  });

  it("mergeResults keeps the first host error", () => {
    const m = mergeResults([
      { accepted: ["a"], failed: [] },
      {
        accepted: [],
        failed: [{ recipient: "b", kind: "temporary", message: "x" }],
        hostError: { kind: "connect", message: "x" },
      },
      { accepted: [], failed: [], hostError: { kind: "timeout", message: "y" } },
    ]);
    expect(m.accepted).toEqual(["a"]);
    expect(m.hostError?.kind).toBe("connect");
  });
});
