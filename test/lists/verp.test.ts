import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { routeRecipient } from "../../src/lists/addresses.js";
import type { ListConfig } from "../../src/lists/schema.js";
import { makeList as loadedList } from "../fixtures/messages/list.js";
import {
  VERP_VALID_DAYS,
  VerpKeyError,
  VerpKeys,
  signedVerpAddress,
  verifyVerpTag,
  verpRefusal,
} from "../../src/lists/verp.js";
import { tempDir } from "../helpers/tmp.js";

const DAY = 86_400_000;
const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);
const NOW = Date.UTC(2026, 10, 28, 12);

/** A loaded list with no members (test/fixtures/messages/list.ts). */
const makeList = (address: string, extra: Record<string, unknown> = {}): ListConfig =>
  loadedList({ address, members: [], ...extra });

const dev = makeList("dev@example.org", { verp: true });
const plain = makeList("plain@example.org");
const probing = makeList("probing@example.org", { verp_probes: true });
const lists = new Map([dev, plain, probing].map((l) => [l.address, l]));

/** The member and tag a signed address routes to. */
function routed(address: string): { member: string; tag: string } {
  const r = routeRecipient(address, lists);
  expect(r?.role).toBe("bounces");
  return { member: r?.verpMember ?? "", tag: r?.verpTag ?? "" };
}

describe("signed VERP addresses", () => {
  it("have the documented form, route to the member and verify for it", () => {
    const a = signedVerpAddress(dev, "Alice+x@Example.NET", KEY, NOW);
    expect(a).toMatch(/^dev-bounces\+Alice\+x=example\.net\+[a-z2-7]{10}@example\.org$/);
    const { member, tag } = routed(a);
    expect(member).toBe("Alice+x@example.net");
    expect(verifyVerpTag(KEY, dev.address, member, tag, NOW)).toMatchObject({ ok: true, kind: "post" });
    // an MTA that changes the local part's case does not break it
    expect(verifyVerpTag(KEY, dev.address, member, tag.toUpperCase(), NOW)).toMatchObject({ ok: true });
    const p = signedVerpAddress(dev, "alice@example.net", KEY, NOW, "probe");
    expect(p).toMatch(/^dev-bounces\+alice=example\.net\+p[a-z2-7]{10}@example\.org$/);
    expect(verifyVerpTag(KEY, dev.address, "alice@example.net", routed(p).tag, NOW)).toMatchObject({
      ok: true,
      kind: "probe",
    });
  });

  it("refuse unsigned, malformed, forged, other members', other lists' and stale tags", () => {
    const { member, tag } = routed(signedVerpAddress(dev, "alice@example.net", KEY, NOW));
    const v = (m: string, t: string | undefined, at = NOW, key = KEY, list = dev.address): string =>
      ((r) => (r.ok ? "ok" : r.problem))(verifyVerpTag(key, list, m, t, at));
    expect(v(member, undefined)).toBe("unsigned");
    expect(v(member, "")).toBe("unsigned");
    expect(v(member, "abc")).toBe("malformed");
    expect(v(member, tag.slice(0, 9) + "!")).toBe("malformed");
    expect(v(member, tag.slice(0, 2) + "aaaaaaaa")).toBe("forged");
    expect(v("bob@example.com", tag)).toBe("forged");
    expect(v(member, tag, NOW, KEY, "other@example.org")).toBe("forged");
    expect(v(member, tag, NOW, OTHER_KEY)).toBe("forged");
    // a post tag is no probe tag, and the other way round
    expect(v(member, "p" + tag)).toBe("forged");
    // valid for VERP_VALID_DAYS days, and a day ahead (clocks); then stale
    expect(v(member, tag, NOW + VERP_VALID_DAYS * DAY)).toBe("ok");
    expect(v(member, tag, NOW - DAY)).toBe("ok");
    expect(v(member, tag, NOW - 2 * DAY)).toBe("forged");
    expect(v(member, tag, NOW + (VERP_VALID_DAYS + 1) * DAY)).toBe("stale");
    // when the two-character day comes round again, the old tag does not come back
    expect(v(member, tag, NOW + 1024 * DAY)).toBe("forged");
  });

  it("verpRefusal: plain -bounces passes; VERP that names nobody, to a verp: false list, or unsigned is refused", () => {
    const key = (): Buffer => KEY;
    const refusal = (a: string): string | null => {
      const r = routeRecipient(a, lists);
      if (!r) throw new Error(`no route for ${a}`);
      return verpRefusal(r, key, NOW);
    };
    expect(refusal("dev-bounces@example.org")).toBeNull();
    expect(refusal(signedVerpAddress(dev, "alice@example.net", KEY, NOW))).toBeNull();
    expect(refusal("dev-bounces+garbage@example.org")).toMatch(/names no member/);
    expect(refusal("dev-bounces+alice=example.net@example.org")).toMatch(/unsigned VERP/);
    expect(refusal(signedVerpAddress(dev, "alice@example.net", OTHER_KEY, NOW))).toMatch(/does not verify/);
    expect(refusal(signedVerpAddress(plain, "alice@example.net", KEY, NOW))).toMatch(/verp: false/);
    // a list without VERP takes only its probe addresses, and only with verp_probes
    expect(refusal(signedVerpAddress(plain, "alice@example.net", KEY, NOW, "probe"))).toMatch(/verp: false/);
    expect(refusal(signedVerpAddress(probing, "alice@example.net", KEY, NOW, "probe"))).toBeNull();
    expect(refusal(signedVerpAddress(probing, "alice@example.net", KEY, NOW))).toMatch(/verp: false/);
  });
});

describe("the VERP secret", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it("is made 0600 on first use, then read by every other user; a damaged one is an error", async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const state = path.join(t.dir, "var");
    const first = new VerpKeys().get(state);
    expect(first).toHaveLength(32);
    const file = path.join(state, "verp.key");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(new VerpKeys().get(state).equals(first)).toBe(true);
    expect((await readFile(file, "latin1")).trim()).toBe(first.toString("hex"));

    const other = path.join(t.dir, "other");
    await mkdir(other);
    await writeFile(path.join(other, "verp.key"), "not a key\n");
    expect(() => new VerpKeys().get(other)).toThrow(VerpKeyError);
  });
});
