import { describe, expect, it } from "vitest";
import {
  addMember,
  disableMember,
  effectiveMembers,
  enableMember,
  enabledRecipients,
  ensureMemberState,
  isMember,
  memberReport,
  memberState,
  removeMember,
} from "../../src/lists/members.js";
import { emptyState } from "../../src/lists/state-shape.js";
import { InvalidAddressError } from "../../src/lists/addresses.js";

const list = {
  address: "dev@example.org",
  allMembers: ["alice@example.net", "Bob@Example.com", "carol@example.net"],
};

describe("effective members", () => {
  it("are the file members when nothing happened by mail", () => {
    const s = emptyState();
    expect(effectiveMembers(list, s)).toEqual(list.allMembers);
    expect(enabledRecipients(list, s)).toEqual(list.allMembers);
  });

  it("are file ∪ added \\ removed, without duplicates", () => {
    const s = emptyState();
    expect(addMember(list, s, "dave@example.net")).toBe(true);
    expect(addMember(list, s, "dave@EXAMPLE.net")).toBe(false); // same mailbox
    expect(addMember(list, s, "alice@example.net")).toBe(false); // already in the file
    expect(removeMember(list, s, "carol@example.net")).toBe(true);
    expect(removeMember(list, s, "carol@example.net")).toBe(false);
    expect(removeMember(list, s, "nobody@example.net")).toBe(false);
    expect(effectiveMembers(list, s)).toEqual(["alice@example.net", "Bob@Example.com", "dave@example.net"]);
    expect(s.added).toEqual(["dave@example.net"]);
    expect(s.removed).toEqual(["carol@example.net"]);

    // leaving after joining by mail just undoes the join; rejoining from the file undoes the leave
    expect(removeMember(list, s, "dave@example.net")).toBe(true);
    expect(addMember(list, s, "carol@example.net")).toBe(true);
    expect(s.added).toEqual([]);
    expect(s.removed).toEqual([]);
    expect(effectiveMembers(list, s)).toEqual(list.allMembers);
  });

  it("refuses to add an address it would not deliver to", () => {
    const s = emptyState();
    expect(() => addMember(list, s, "x@example.net\r\nBcc: y@example.com")).toThrow(InvalidAddressError);
    expect(() => addMember(list, s, "`reboot`@example.net")).toThrow(InvalidAddressError);
    expect(s.added).toEqual([]);
  });

  it("matches members by domain case-insensitively and local part exactly", () => {
    const s = emptyState();
    expect(isMember(list, s, "bob@example.com")).toBe(false);
    expect(isMember(list, s, "Bob@example.COM")).toBe(true);
    expect(isMember(list, s, "<alice@Example.net>")).toBe(true);
  });

  it("leave the disabled out of the recipients", () => {
    const s = emptyState();
    disableMember(s, "alice@EXAMPLE.net", "bounces", 1000);
    expect(enabledRecipients(list, s)).toEqual(["Bob@Example.com", "carol@example.net"]);
    expect(effectiveMembers(list, s)).toHaveLength(3);
    // a second disable keeps the first reason and time
    disableMember(s, "alice@example.net", "admin", 2000);
    expect(memberState(s, "alice@example.net")?.disabled).toEqual({ reason: "bounces", at: 1000 });
    enableMember(s, "alice@example.net");
    expect(memberState(s, "alice@example.net")).toEqual({ score: 0 });
    expect(enabledRecipients(list, s)).toEqual(list.allMembers);
  });

  it("never reads prototype properties as member state", () => {
    const s = emptyState();
    expect(memberState(s, "constructor")).toBeUndefined();
    expect(memberState(s, "__proto__")).toBeUndefined();
    ensureMemberState(s, "x@example.net").score = 3;
    expect(memberState(s, "x@EXAMPLE.NET")?.score).toBe(3);
  });
});

describe("memberReport", () => {
  it("shows state, score and source of every effective member", () => {
    const s = emptyState();
    addMember(list, s, "dave@example.net");
    removeMember(list, s, "carol@example.net");
    ensureMemberState(s, "Bob@example.com").score = 2.5;
    const bob = ensureMemberState(s, "Bob@example.com");
    bob.lastBounce = 5000;
    disableMember(s, "alice@example.net", "bounces", 4000);
    const r = memberReport(list, s);
    expect(r).toEqual({
      list: "dev@example.org",
      members: [
        {
          address: "alice@example.net",
          source: "file",
          state: "disabled",
          disabled: { reason: "bounces", at: 4000 },
          score: 0,
        },
        { address: "Bob@Example.com", source: "file", state: "enabled", score: 2.5, lastBounce: 5000 },
        { address: "dave@example.net", source: "mail", state: "enabled", score: 0 },
      ],
      leftByMail: ["carol@example.net"],
      counts: { total: 3, enabled: 2, disabled: 1 },
    });
  });
});
