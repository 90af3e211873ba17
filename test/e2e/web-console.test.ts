/**
 * The web console in a real browser (Debian's chromium driven by puppeteer-core) against the real
 * daemon: `qrunner start` with `web.listen`, two lists holding nonmember posts, and a recording SMTP
 * sink on loopback. An operator logs in, sees the held posts (a hostile subject shown as text, no
 * element made of it), approves one, and the post reaches the members; a POST without the CSRF token
 * is refused and changes nothing; a moderator of one list neither sees nor acts on the other's posts,
 * also when posting to the action directly. The screenshot in the README comes from here: set
 * QRUNNER_SCREENSHOT=docs/console.png to write it there (otherwise it goes to the site's temp dir).
 *
 * Skipped, saying so, where /usr/bin/chromium is not installed (`.ci/run` installs it).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeldStore } from "../../src/lists/held.js";
import { hashPassword } from "../../src/lists/passwords.js";
import { freePort } from "../helpers/etcd.js";
import { REPO, requireBuild, runCli, spawnCli, waitFor, type Running } from "../helpers/site.js";
import { listSite, mail, type ListSite } from "./lists-harness.js";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);

const OPERATOR = { name: "ops", password: "web console e2e" };
const A = { address: "alpha@example.org", moderator: "mo@example.com", password: "alpha-pass" };
const B = { address: "beta@example.org", moderator: "bo@example.com", password: "beta-pass" };
const MEMBER = "alice@example.net";
const HOSTILE = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> & 'quoted'`;

let s: ListSite | undefined;
let master: Running | undefined;
let browser: Browser | undefined;
let base = "";
const held: Record<string, string> = {};

async function heldBySubject(list: string): Promise<Map<string, string>> {
  if (!s) throw new Error("no site");
  const posts = await new HeldStore(s.site.state, list).list();
  return new Map(posts.map((p) => [p.subject ?? "", p.id]));
}

async function logIn(page: Page, account: string, password: string): Promise<void> {
  await page.goto(`${base}/login`);
  await page.type("#account", account);
  await page.type("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

/** A POST from inside the page (same origin, the session cookie sent), with or without the CSRF token. */
async function postFromPage(
  page: Page,
  action: string,
  form: Record<string, string>,
  csrf: boolean,
): Promise<number> {
  const token = await page.$eval('input[name="csrf"]', (el) => (el as unknown as { value: string }).value);
  return page.evaluate(
    async (action, form) => {
      const r = await fetch(action, { method: "POST", body: new URLSearchParams(form), redirect: "manual" });
      return r.type === "opaqueredirect" ? 303 : r.status;
    },
    action,
    csrf ? { ...form, csrf: token } : form,
  );
}

const TITLE = HAVE_CHROMIUM
  ? `the web console in chromium (${CHROMIUM})`
  : `the web console in chromium: skipped, ${CHROMIUM} is not installed (apt-get install chromium; .ci/run does)`;

describe.skipIf(!HAVE_CHROMIUM)(TITLE, () => {
  beforeAll(async () => {
    requireBuild();
    const port = await freePort();
    const list = (l: typeof A) => ({
      address: l.address,
      owners: [`owner-${l.address}`.replace("@", "-at-") + "@example.com"],
      members: [MEMBER],
      extra: `nonmembers: hold\nmoderators: [${l.moderator}]`,
    });
    s = await listSite([list(A), list(B)], {
      config:
        `web:\n  listen: 127.0.0.1:${port}\n  operators:\n` +
        `    - { name: ${OPERATOR.name}, password_hash: "${await hashPassword(OPERATOR.password)}" }\n`,
    });
    // the list passwords as `qrunner list password` sets them (stdin, never argv)
    for (const l of [A, B]) {
      const r = await runCli(["list", "password", l.address, "-C", s.site.configFile], {
        input: `${l.password}\n`,
      });
      if (r.code !== 0) throw new Error(`qrunner list password exited ${r.code}: ${r.stderr}`);
    }
    base = `http://127.0.0.1:${port}`;
    master = spawnCli(["start", "-C", s.site.configFile]);
    await waitFor(
      "the master's web console",
      () => master?.stdout().includes('"msg":"web console listening"') ?? false,
      30_000,
    );
    for (const [to, subject] of [
      [A.address, "Weekly report"],
      [A.address, HOSTILE],
      [B.address, "Beta business"],
    ] as const)
      await s.inject(mail({ from: "stranger@example.com", to, subject }), to);
    await waitFor(
      "three held posts",
      async () => (await heldBySubject(A.address)).size === 2 && (await heldBySubject(B.address)).size === 1,
      60_000,
    );
    for (const l of [A, B]) for (const [subject, id] of await heldBySubject(l.address)) held[subject] = id;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...(process.getuid?.() === 0 ? ["--no-sandbox"] : []), "--disable-dev-shm-usage"],
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (master && master.child.exitCode === null) {
      master.child.kill("SIGTERM");
      await master.exited;
    }
    await s?.close();
  }, 60_000);

  it("an operator sees the held posts, the hostile subject as text, and approves one: the members get it", async () => {
    const page = await (browser as Browser).newPage();
    await page.setViewport({ width: 1000, height: 760 });
    await logIn(page, OPERATOR.name, OPERATOR.password);
    expect(new URL(page.url()).pathname).toBe("/");
    expect(await page.$eval("main h1", (h) => h.textContent)).toBe("Daemon");
    await page.goto(`${base}/held`);
    const subjects = await page.$$eval(".post .subject", (els) => els.map((e) => e.textContent));
    expect(subjects).toEqual(expect.arrayContaining(["Weekly report", HOSTILE, "Beta business"]));
    // shown as text: no element was made of it, and nothing of it ran
    expect(await page.$$eval("main script, main img, main svg", (els) => els.length)).toBe(0);
    expect(
      await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned),
    ).toBeUndefined();

    const shot = process.env["QRUNNER_SCREENSHOT"] ?? path.join(s?.site.dir ?? REPO, "console.png");
    await page.screenshot({ path: path.resolve(REPO, shot) as `${string}.png` });
    expect(existsSync(path.resolve(REPO, shot))).toBe(true);

    const id = held["Weekly report"] ?? "";
    await Promise.all([
      page.waitForNavigation(),
      page.click(`.post[data-held-id="${id}"] form[action="/held/approve"] button`),
    ]);
    expect(await page.$eval(".flash", (f) => f.textContent)).toContain(`approved ${id}`);
    expect(await page.$(`.post[data-held-id="${id}"]`)).toBeNull();
    await waitFor("the approved post at the members' sink", () => (s?.to(MEMBER).length ?? 0) > 0, 60_000);
    const delivered = s?.to(MEMBER) ?? [];
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.raw.toString("latin1")).toContain("Weekly report");
    await page.close();
  }, 120_000);

  it("refuses a POST without the CSRF token (403) and changes nothing", async () => {
    const page = await (browser as Browser).newPage();
    await logIn(page, OPERATOR.name, OPERATOR.password);
    await page.goto(`${base}/held`);
    const id = held[HOSTILE] ?? "";
    expect(await postFromPage(page, "/held/discard", { list: A.address, id }, false)).toBe(403);
    expect([...(await heldBySubject(A.address)).values()]).toContain(id);
    await page.close();
  }, 60_000);

  it("a moderator of one list neither sees nor acts on another list's held posts", async () => {
    const ctx = await (browser as Browser).createBrowserContext();
    const page = await ctx.newPage();
    await logIn(page, B.moderator, B.password);
    expect(new URL(page.url()).pathname).toBe("/held");
    const text = await page.$eval("main", (m) => m.textContent ?? "");
    expect(text).toContain("Beta business");
    expect(text).not.toContain(A.address);
    expect(text).not.toContain("<script>");
    expect(await page.$$eval(".post", (els) => els.length)).toBe(1);
    // the operator pages are not theirs
    const queues = await page.goto(`${base}/queues`);
    expect(queues?.status()).toBe(403);
    await page.goto(`${base}/held`);
    // with a valid token, posting to list A's post directly: refused, the post still held
    const id = held[HOSTILE] ?? "";
    expect(await postFromPage(page, "/held/approve", { list: A.address, id }, true)).toBe(403);
    expect(await postFromPage(page, "/held/discard", { list: B.address, id }, true)).toBe(303);
    expect([...(await heldBySubject(A.address)).values()]).toContain(id);
    // their own list's post they can handle
    const own = held["Beta business"] ?? "";
    await Promise.all([
      page.waitForNavigation(),
      page.click(`.post[data-held-id="${own}"] form[action="/held/discard"] button`),
    ]);
    expect(await page.$eval(".flash", (f) => f.textContent)).toContain(`discarded ${own}`);
    expect((await heldBySubject(B.address)).size).toBe(0);
    await ctx.close();
  }, 60_000);
});
