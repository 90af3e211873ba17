/** What a reply to a held-post notice asks for (src/lists/moderation-reply.ts readReplyAction). */
import { describe, expect, it } from "vitest";
import { readReplyAction } from "../../src/lists/moderation-reply.js";

const T = "0123456789abcdef0123456789abcdef01234567";

describe("readReplyAction", () => {
  it("reads the first line that is not blank, quoted or an attribution", () => {
    expect(readReplyAction(`Re: confirm ${T}`, "\napprove\n\n> A post is held\n", T)).toEqual({
      action: { kind: "approve" },
      line: "approve",
    });
    expect(
      readReplyAction(undefined, "On Mon, 7 Dec 2026, dev-owner@example.org wrote:\n> held\nDiscard\n", T),
    ).toEqual({ action: { kind: "discard" }, line: "Discard" });
    expect(readReplyAction(undefined, "reject   off topic here  \n> quoted", T)).toEqual({
      action: { kind: "reject", reason: "off topic here" },
      line: "reject   off topic here",
    });
    expect(readReplyAction(undefined, "REJECT\n", T)).toEqual({ action: { kind: "reject" }, line: "REJECT" });
  });

  it("an empty reply approves only while the Subject still carries the token", () => {
    expect(readReplyAction(`Re: confirm ${T}`, "> quoted only\n", T)).toMatchObject({
      action: { kind: "approve" },
    });
    expect(readReplyAction("Re: something", "", T)).toHaveProperty("unreadable");
    expect(readReplyAction(`Re: confirm ${T}x`, "", T)).toHaveProperty("unreadable");
  });

  it("anything else is unreadable (shown as one bounded line) and a signature ends the text", () => {
    expect(readReplyAction(undefined, "yes please\x07\n", T)).toEqual({ unreadable: "yes please" });
    expect(readReplyAction(`confirm ${T}`, "-- \napprove\n", T)).toMatchObject({
      action: { kind: "approve" },
      line: "(an empty reply)",
    });
    const long = readReplyAction(undefined, "reject " + "x".repeat(5000), T);
    expect("action" in long && long.action.kind === "reject" && long.action.reason?.length).toBe(300);
  });
});
