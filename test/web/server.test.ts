/**
 * The console over real HTTP on loopback, on a real site's files: login and its rate limit, sessions,
 * CSRF on every action, the access rules (an operator sees everything; a moderator only their lists'
 * held posts, also when posting to another list's post directly), escaping of what posters wrote,
 * the security headers, and the queue actions.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HeldStore } from "../../src/lists/held.js";
import { parseName } from "../../src/queue/names.js";
import { Switchboard } from "../../src/queue/switchboard.js";
import { consoleSite, LIST_A, LIST_B, login, OPERATOR, request, type ConsoleSite } from "./console-site.js";

let c: ConsoleSite | undefined;
afterEach(async () => {
  await c?.close();
  c = undefined;
});

const HOSTILE_SUBJECT = `<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes" 'too'`;

async function hold(list: string, subject: string): Promise<string> {
  if (!c) throw new Error("no site");
  const raw = Buffer.from(`From: stranger@example.net\r\nTo: ${list}\r\nSubject: x\r\n\r\nhello\r\n`);
  return new HeldStore(c.site.state, list).hold(raw, {
    sender: "stranger@example.net",
    from: "stranger@example.net",
    subject,
    reason: "post from a non-member",
  });
}

async function heldIds(list: string): Promise<string[]> {
  if (!c) throw new Error("no site");
  return (await new HeldStore(c.site.state, list).list()).map((p) => p.id);
}

async function queued(queue: string): Promise<string[]> {
  if (!c) throw new Error("no site");
  return (await readdir(path.join(c.site.qfiles, queue)).catch(() => [])).filter((f) => f.endsWith(".qf"));
}

describe("the web console over HTTP", () => {
  it("sends every page with the security headers; without a session, pages redirect to the login", async () => {
    c = await consoleSite();
    for (const p of ["/", "/queues", "/hosts", "/held"]) {
      const r = await request(c.base, "GET", p);
      expect(r.status).toBe(303);
      expect(r.headers.location).toBe("/login");
    }
    const r = await request(c.base, "GET", "/login");
    expect(r.status).toBe(200);
    expect(r.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(r.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(r.headers["content-security-policy"]).not.toContain("unsafe-inline");
    expect(r.headers["x-frame-options"]).toBe("DENY");
    expect(r.headers["cache-control"]).toBe("no-store");
    expect(r.headers["x-content-type-options"]).toBe("nosniff");
    expect(r.body).toContain('name="viewport"');
    expect(r.body).not.toMatch(/<script>|<script[^>]*>[^<]/); // no inline script
    // a POST without a session does nothing
    expect(
      (await request(c.base, "POST", "/held/approve", { form: { list: LIST_A.address, id: "x" } })).status,
    ).toBe(403);
  });

  it("logs an operator in with an HttpOnly, SameSite=Strict cookie; a wrong password is refused", async () => {
    c = await consoleSite();
    const bad = await request(c.base, "POST", "/login", {
      form: { account: OPERATOR.name, password: "nope" },
    });
    expect(bad.status).toBe(401);
    expect(bad.headers["set-cookie"]).toBeUndefined();
    const unknown = await request(c.base, "POST", "/login", { form: { account: "nobody", password: "x" } });
    expect(unknown.status).toBe(401);
    const ok = await request(c.base, "POST", "/login", {
      form: { account: OPERATOR.name, password: OPERATOR.password },
    });
    expect(ok.status).toBe(303);
    const cookie = ok.headers["set-cookie"]?.[0] ?? "";
    expect(cookie).toMatch(
      /^qrunner_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
    );
    const client = await login(c.base, OPERATOR.name, OPERATOR.password);
    for (const p of ["/", "/queues", "/hosts", "/held"]) expect((await client.get(p)).status).toBe(200);
    // logging out ends the session on the server, not only in the browser
    expect((await client.post("/logout", {})).status).toBe(303);
    expect((await client.get("/held")).status).toBe(303);
  });

  it("rate-limits failed logins per account: the right password is refused once the limit is reached", async () => {
    c = await consoleSite({ rateLimit: { perAccount: 3, perIp: 100 } });
    for (let i = 0; i < 3; i++)
      expect(
        (await request(c.base, "POST", "/login", { form: { account: OPERATOR.name, password: `guess${i}` } }))
          .status,
      ).toBe(401);
    const r = await request(c.base, "POST", "/login", {
      form: { account: OPERATOR.name, password: OPERATOR.password },
    });
    expect(r.status).toBe(429);
    expect(r.headers["set-cookie"]).toBeUndefined();
  });

  it("refuses an action without the session's CSRF token (403) and changes nothing", async () => {
    c = await consoleSite();
    const id = await hold(LIST_A.address, "please approve");
    const op = await login(c.base, OPERATOR.name, OPERATOR.password);
    const none = await op.post("/held/approve", { list: LIST_A.address, id }, false);
    expect(none.status).toBe(403);
    const wrong = await request(c.base, "POST", "/held/approve", {
      cookie: op.cookie,
      form: { csrf: "A".repeat(43), list: LIST_A.address, id },
    });
    expect(wrong.status).toBe(403);
    // another session's token is no good either
    const other = await login(c.base, OPERATOR.name, OPERATOR.password);
    const crossed = await request(c.base, "POST", "/held/discard", {
      cookie: op.cookie,
      form: { csrf: other.csrf, list: LIST_A.address, id },
    });
    expect(crossed.status).toBe(403);
    // a page of another site posting with the right token (were it to learn one): refused by its Origin
    const foreign = await request(c.base, "POST", "/held/approve", {
      cookie: op.cookie,
      form: { csrf: op.csrf, list: LIST_A.address, id },
      headers: { origin: "https://evil.example" },
    });
    expect(foreign.status).toBe(403);
    const loginCsrf = await request(c.base, "POST", "/login", {
      form: { account: OPERATOR.name, password: OPERATOR.password },
      headers: { origin: "https://evil.example" },
    });
    expect(loginCsrf.status).toBe(403);
    expect(await heldIds(LIST_A.address)).toEqual([id]);
    expect(await queued("incoming")).toEqual([]);
    // the same POST from the console's own origin goes through
    const own = await request(c.base, "POST", "/held/approve", {
      cookie: op.cookie,
      form: { csrf: op.csrf, list: LIST_A.address, id },
      headers: { origin: c.base },
    });
    expect(own.status).toBe(303);
    expect(await queued("incoming")).toHaveLength(1);
  });

  it("shows a moderator only their lists' held posts, and refuses their POST to another list", async () => {
    c = await consoleSite();
    const a = await hold(LIST_A.address, "for alpha");
    const b = await hold(LIST_B.address, "for beta");
    const mo = await login(c.base, LIST_A.moderator, LIST_A.password);
    const page = await mo.get("/held");
    expect(page.body).toContain("for alpha");
    expect(page.body).not.toContain("for beta");
    expect(page.body).not.toContain(LIST_B.address);
    for (const p of ["/queues", "/hosts"]) expect((await mo.get(p)).status).toBe(403);
    expect((await mo.get("/")).headers.location).toBe("/held");
    // B's post by its id, named as B's and as A's: refused, still held
    expect((await mo.post("/held/approve", { list: LIST_B.address, id: b })).status).toBe(403);
    const viaA = await mo.post("/held/discard", { list: LIST_A.address, id: b });
    expect(viaA.status).toBe(303);
    expect(await heldIds(LIST_B.address)).toEqual([b]);
    expect((await mo.post("/queues/unshunt", { id: "0".repeat(40) })).status).toBe(403);
    // A's password does not open B for B's moderator, nor A for a stranger
    await expect(login(c.base, LIST_B.moderator, LIST_A.password)).rejects.toThrow(/401/);
    await expect(login(c.base, "mallory@example.com", LIST_A.password)).rejects.toThrow(/401/);
    // the list owner logs in too, and acts on A
    const owner = await login(c.base, LIST_A.owner, LIST_A.password);
    expect((await owner.post("/held/approve", { list: LIST_A.address, id: a })).status).toBe(303);
    expect(await heldIds(LIST_A.address)).toEqual([]);
    expect(await queued("incoming")).toHaveLength(1);
    expect((await owner.get("/held")).body).toContain(`approved ${a}`);
  });

  it("renders what the poster wrote as text, and a reject reason reaches the poster's notice", async () => {
    c = await consoleSite();
    const id = await hold(LIST_A.address, HOSTILE_SUBJECT);
    const op = await login(c.base, OPERATOR.name, OPERATOR.password);
    const page = (await op.get("/held")).body;
    expect(page).not.toContain("<script>alert");
    expect(page).not.toContain("<img src=x");
    expect(page).toContain(
      "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;",
    );
    const r = await op.post("/held/reject", { list: LIST_A.address, id, reason: "off <b>topic</b>" });
    expect(r.status).toBe(303);
    const [notice] = await queued("outgoing");
    expect(notice).toBeDefined();
    const sb = await Switchboard.open({ root: c.site.qfiles, queue: "outgoing" });
    const e = await sb.peek(notice ?? "");
    expect(e.meta.recipients).toEqual(["stranger@example.net"]);
    expect(e.message.toString()).toContain("off <b>topic</b>");
  });

  it("shows the daemon from the master's status: workers, restarts, a stall, the config, a rejected edit", async () => {
    const now = Date.now();
    const worker = {
      key: "outgoing 0/1",
      runner: "outgoing",
      slice: "0/1",
      pid: 4242,
      restarts: 3,
      handled: 17,
      failed: 1,
      due: 5,
      inHand: 0,
      lastError: "<b>550</b> no",
      sinceProgress: 400,
      waiting: null,
      startedAt: now - 60_000,
      nextStartAt: null,
    };
    c = await consoleSite({
      daemon: async () => ({
        running: true,
        status: {
          format: 1,
          updatedAt: now,
          master: {
            pid: 4000,
            host: "mx",
            state: "running",
            startedAt: now - 3_600_000,
            readyMs: 812,
            rss: 50e6,
          },
          config: { file: "/etc/qrunner/qrunner.yaml", version: "abc123", loadedAt: now - 60_000 },
          rejectedEdit: { at: now - 5000, issues: [], message: "q.yaml:3:5: smtp: <script>bad</script>" },
          reload: { count: 2, at: now - 5000, why: "edit", ok: false },
          workers: [{ ...worker, state: "stalled" }],
        },
      }),
    });
    const op = await login(c.base, OPERATOR.name, OPERATOR.password);
    const page = (await op.get("/")).body;
    expect(page).toContain("running · pid 4000 on mx");
    expect(page).toMatch(/<td class="bad">stalled<\/td>\s*<td class="n">3<\/td>/);
    expect(page).toContain("&lt;b&gt;550&lt;/b&gt; no");
    expect(page).toContain("Rejected edit");
    expect(page).toContain("q.yaml:3:5: smtp: &lt;script&gt;bad&lt;/script&gt;");
    expect(page).toContain("abc123");
    expect(page).not.toContain("<script>bad");
  });

  it("unshunts a shunted entry and retries a deferred one, for operators", async () => {
    c = await consoleSite();
    const shunt = await Switchboard.open({ root: c.site.qfiles, queue: "shunt" });
    const sid = await shunt.enqueue(Buffer.from("Subject: s\r\n\r\nx\r\n"), {
      sender: "a@example.net",
      recipients: ["b@example.com"],
      shuntedFrom: "outgoing",
      shuntReason: "<b>crashed</b> twice",
    });
    const backoff = await Switchboard.open({ root: c.site.qfiles, queue: "backoff" });
    const bid = await backoff.enqueue(
      Buffer.from("Subject: b\r\n\r\nx\r\n"),
      { sender: "a@example.net", recipients: ["b@example.com"] },
      { notBefore: Date.now() + 3_600_000 },
    );
    const op = await login(c.base, OPERATOR.name, OPERATOR.password);
    const page = (await op.get("/queues")).body;
    expect(page).toContain("&lt;b&gt;crashed&lt;/b&gt; twice");
    expect(page).toContain(`value="${sid}"`);
    expect(page).toContain(`value="${bid}"`);
    expect((await op.post("/queues/unshunt", { id: sid })).status).toBe(303);
    expect(await queued("shunt")).toEqual([]);
    expect((await queued("outgoing")).some((f) => f.includes(sid))).toBe(true);
    expect((await op.post("/queues/requeue", { id: bid })).status).toBe(303);
    const [due] = await queued("backoff");
    expect(parseName(due ?? "")?.time).toBeLessThanOrEqual(Date.now());
  });
});
