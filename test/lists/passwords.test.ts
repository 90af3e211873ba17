/** scrypt password hashes (src/lists/passwords.ts): the stored form, verification, hostile hashes. */
import { describe, expect, it } from "vitest";
import {
  hashPassword,
  PASSWORD_HASH_RE,
  verifyListPassword,
  verifyPassword,
} from "../../src/lists/passwords.js";
import { listSchema } from "../../src/lists/schema.js";

describe("hashPassword / verifyPassword", () => {
  it("stores scrypt$N$r$p$salt$hash with a fresh salt, and verifies only the right password", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    expect(a).toMatch(PASSWORD_HASH_RE);
    expect(a.split("$").slice(0, 4)).toEqual(["scrypt", "16384", "8", "1"]);
    expect(a).not.toBe(b); // random salt
    expect(await verifyPassword("correct horse", a)).toBe(true);
    expect(await verifyPassword("correct horse", b)).toBe(true);
    expect(await verifyPassword("correct horsE", a)).toBe(false);
    expect(await verifyPassword("", a)).toBe(false);
  });

  it("verifies with the parameters stored in the hash, not the defaults", async () => {
    const h = await hashPassword("pw", { N: 1024, r: 4, p: 2 });
    expect(h.split("$").slice(1, 4)).toEqual(["1024", "4", "2"]);
    expect(await verifyPassword("pw", h)).toBe(true);
    expect(await verifyPassword("pw2", h)).toBe(false);
  });

  it("treats composed and decomposed Unicode as one password", async () => {
    const h = await hashPassword("caf\u00e9");
    expect(await verifyPassword("cafe\u0301", h)).toBe(true);
  });

  it("refuses empty and over-long passwords", async () => {
    await expect(hashPassword("")).rejects.toThrow(RangeError);
    await expect(hashPassword("x".repeat(1025))).rejects.toThrow(RangeError);
  });

  it("says false, without computing, for malformed or too costly hashes", async () => {
    const good = await hashPassword("pw");
    const [, , r, p, salt, key] = good.split("$");
    for (const bad of [
      "",
      "plain-text-password",
      `scrypt$1000$${r}$${p}$${salt}$${key}`, // N not a power of two
      `scrypt$${2 ** 24}$${r}$${p}$${salt}$${key}`, // 16 GiB of memory
      `scrypt$16384$99$${p}$${salt}$${key}`,
      `bcrypt$16384$${r}$${p}$${salt}$${key}`,
      `scrypt$16384$${r}$${p}$${salt}$${key}$extra`,
    ])
      expect(await verifyPassword("pw", bad), bad).toBe(false);
  });
});

describe("verifyListPassword and the list schema", () => {
  it("is false for a list without a password", async () => {
    expect(await verifyListPassword({}, "anything")).toBe(false);
  });

  it("accepts a hash in moderator_password and moderators as addresses, refuses anything else", async () => {
    const hash = await hashPassword("pw");
    const base = { address: "dev@example.org", owners: ["o@example.org"] };
    const ok = listSchema.safeParse({ ...base, moderators: ["m@example.org"], moderator_password: hash });
    expect(ok.success).toBe(true);
    if (ok.success) expect(await verifyListPassword(ok.data, "pw")).toBe(true);
    expect(listSchema.safeParse({ ...base, moderator_password: "pw" }).success).toBe(false);
    expect(listSchema.safeParse({ ...base, moderators: ["not an address"] }).success).toBe(false);
    const d = listSchema.parse(base);
    expect(d.moderators).toEqual([]);
  });
});
