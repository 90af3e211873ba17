/**
 * The console's routes. Every page but the login form needs a session; every POST but the login
 * needs the session's CSRF token (403 and nothing done otherwise); operator pages refuse moderators
 * (403), and a held-post action is checked against the lists the viewer moderates, whatever the form
 * says. Results of actions come back as a one-time flash on the page the browser is sent to (303).
 */
import type http from "node:http";
import type { ListConfig } from "../lists/schema.js";
import { sameAddress } from "../lists/addresses.js";
import { authenticate, canModerate, isOperator, visibleLists, type Settings } from "./access.js";
import { moderateHeld, requeueOne, unshuntOne, type ActionResult } from "./actions.js";
import { CONSOLE_CSS, CONSOLE_JS } from "./assets.js";
import type { ConsoleDeps } from "./deps.js";
import { html } from "./escape.js";
import { clientAddress, crossOrigin, readForm, redirect, send, sendHtml, sendText } from "./http.js";
import { daemonPage } from "./pages/daemon.js";
import { heldPage } from "./pages/held.js";
import { hostsPage } from "./pages/hosts.js";
import { page, type PageContext } from "./pages/layout.js";
import { loginPage } from "./pages/login.js";
import { queuesPage } from "./pages/queues.js";
import { ShapeCache } from "./shape-cache.js";
import type { LoginLimiter } from "./ratelimit.js";
import { csrfOk, sessionCookie, sessionIdFrom, type Session, type SessionStore } from "./sessions.js";

const HELD_ACTIONS = new Set(["approve", "reject", "discard"]);

export class Routes {
  private readonly now: () => number;
  private readonly shapes = new ShapeCache();

  constructor(
    private readonly deps: ConsoleDeps,
    private readonly sessions: SessionStore,
    private readonly limiter: LoginLimiter,
  ) {
    this.now = deps.now ?? Date.now;
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://console").pathname;
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "POST") return sendText(res, 405, "GET or POST");
    if (method === "GET" && path === "/console.css")
      return send(res, 200, "text/css; charset=utf-8", CONSOLE_CSS);
    if (method === "GET" && path === "/console.js")
      return send(res, 200, "text/javascript; charset=utf-8", CONSOLE_JS);
    if (method === "POST" && crossOrigin(req)) return sendText(res, 403, "cross-origin POST refused");
    const settings = await this.deps.settings();
    if (path === "/login") return method === "GET" ? this.loginForm(res) : this.login(req, res, settings);

    const session = this.sessions.get(sessionIdFrom(req.headers.cookie));
    if (!session) {
      if (method === "GET") return redirect(res, "/login");
      return sendText(res, 403, "not logged in");
    }
    if (method === "POST") {
      const form = await readForm(req);
      // before anything else: a POST without this session's token does nothing at all
      if (!csrfOk(session, form.get("csrf") ?? undefined))
        return sendText(res, 403, "missing or wrong CSRF token");
      return this.post(path, form, session, settings, res);
    }
    const ctx: PageContext = { principal: session.principal, csrf: session.csrf, path };
    // the script's refresh keeps the flash for the page the user sees
    if (req.headers["x-console-refresh"] === undefined) {
      ctx.flash = session.flash;
      session.flash = undefined;
    }
    return this.get(path, ctx, session, settings, res);
  }

  private loginForm(res: http.ServerResponse, status = 200, error?: string, account = ""): void {
    const ctx: PageContext = { principal: null, csrf: "", path: "/login" };
    if (error !== undefined) ctx.flash = { text: error, error: true };
    sendHtml(res, status, loginPage(ctx, account));
  }

  private async login(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    settings: Settings,
  ): Promise<void> {
    const form = await readForm(req);
    const account = (form.get("account") ?? "").trim();
    const password = form.get("password") ?? "";
    const ip = clientAddress(req);
    if (!this.limiter.allowed(ip, account)) {
      this.deps.logger.warn({ ip, account }, "web: login refused by the rate limit");
      return this.loginForm(res, 429, "Too many failed logins: wait a few minutes and try again.", account);
    }
    const principal = await authenticate(settings, account, password);
    if (!principal) {
      this.limiter.failed(ip, account);
      this.deps.logger.warn({ ip, account }, "web: login failed");
      return this.loginForm(res, 401, "Wrong account or password.", account);
    }
    this.limiter.succeeded(account);
    const old = this.sessions.get(sessionIdFrom(req.headers.cookie));
    if (old) this.sessions.destroy(old.id);
    const session = this.sessions.create(principal);
    this.deps.logger.info({ ip, account, kind: principal.kind }, "web: logged in");
    redirect(res, principal.kind === "operator" ? "/" : "/held", {
      "set-cookie": sessionCookie(session, this.sessions.maxAgeMs),
    });
  }

  private async get(
    path: string,
    ctx: PageContext,
    session: Session,
    settings: Settings,
    res: http.ServerResponse,
  ): Promise<void> {
    const p = session.principal;
    const now = this.now();
    const { config } = settings;
    if (path === "/held")
      return sendHtml(res, 200, await heldPage(ctx, config.state, visibleLists(p, settings), now));
    const operatorPages: Record<string, () => Promise<ReturnType<typeof page>>> = {
      "/": async () => daemonPage(ctx, await this.deps.daemon(), settings, now),
      "/queues": () => queuesPage(ctx, config.qfiles, this.shapes, now),
      "/hosts": () => hostsPage(ctx, config, now),
    };
    const render = operatorPages[path];
    if (!render) return sendHtml(res, 404, page(ctx, "Not found", html`<p>No such page.</p>`));
    if (!isOperator(p, settings)) {
      if (path === "/") return redirect(res, "/held");
      return sendHtml(res, 403, page(ctx, "Not allowed", html`<p>Operators only.</p>`));
    }
    sendHtml(res, 200, await render());
  }

  private async post(
    path: string,
    form: URLSearchParams,
    session: Session,
    settings: Settings,
    res: http.ServerResponse,
  ): Promise<void> {
    const p = session.principal;
    const { config } = settings;
    if (path === "/logout") {
      this.sessions.destroy(session.id);
      return redirect(res, "/login", { "set-cookie": sessionCookie(null, 0) });
    }
    const who = p.kind === "operator" ? `web:${p.name}` : `web:${p.address}`;
    let result: ActionResult;
    let back: string;
    const action = path.startsWith("/held/") ? path.slice("/held/".length) : null;
    if (action !== null && HELD_ACTIONS.has(action)) {
      const list = findList(settings, form.get("list") ?? "");
      // the same answer for a list that does not exist and one the viewer does not moderate
      if (!list || !canModerate(p, list.address, settings))
        return sendText(res, 403, "not a list you moderate");
      const reason = (form.get("reason") ?? "").replace(/\s+/g, " ").trim().slice(0, 300);
      const act =
        action === "reject"
          ? { kind: "reject" as const, ...(reason ? { reason } : {}) }
          : { kind: action as "approve" | "discard" };
      result = await moderateHeld(config, list, form.get("id") ?? "", act, who, this.deps.logger);
      back = "/held";
    } else if (path === "/queues/unshunt" || path === "/queues/requeue") {
      if (!isOperator(p, settings)) return sendText(res, 403, "operators only");
      const id = form.get("id") ?? "";
      result =
        path === "/queues/unshunt"
          ? await unshuntOne(config.qfiles, id)
          : await requeueOne(config.qfiles, id, this.now());
      back = "/queues";
    } else return sendText(res, 404, "no such action");
    this.deps.logger.info({ by: who, path, ok: result.ok, result: result.text }, "web: action");
    session.flash = { text: result.text, error: !result.ok };
    redirect(res, back);
  }
}

function findList(settings: Settings, address: string): ListConfig | undefined {
  return [...settings.lists.values()].find((l) => sameAddress(l.address, address));
}
