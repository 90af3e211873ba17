/**
 * A web console over a real site for the tests of test/web/: a config with one operator, two lists
 * (each with its own owner, moderator and moderator password), the console on a free loopback port,
 * and a small HTTP client that keeps one session's cookie and CSRF token.
 */
import http from "node:http";
import { hashPassword } from "../../src/lists/passwords.js";
import { loadAll } from "../../src/lists/load.js";
import { silentLogger } from "../../src/util/log.js";
import type { ConsoleDeps } from "../../src/web/deps.js";
import { WebConsole, type WebConsoleOptions } from "../../src/web/server.js";
import { makeSite, type Site } from "../helpers/site.js";

export const OPERATOR = { name: "ops", password: "correct horse battery staple" };
export const LIST_A = {
  address: "alpha@example.org",
  owner: "anna@example.com",
  moderator: "mo@example.com",
  password: "alpha-secret",
};
export const LIST_B = {
  address: "beta@example.org",
  owner: "bert@example.com",
  moderator: "bo@example.com",
  password: "beta-secret",
};

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface ConsoleSite {
  site: Site;
  web: WebConsole;
  base: string;
  close(): Promise<void>;
}

export async function consoleSite(
  opts: Partial<WebConsoleOptions> & { daemon?: ConsoleDeps["daemon"] } = {},
): Promise<ConsoleSite> {
  const { daemon = async () => ({ running: false, status: null }), ...rest } = opts;
  const opHash = await hashPassword(OPERATOR.password);
  const site = await makeSite(
    `web:\n  operators:\n    - { name: ${OPERATOR.name}, password_hash: "${opHash}" }\n`,
    [],
  );
  for (const l of [LIST_A, LIST_B])
    await site.writeList({
      address: l.address,
      owners: [l.owner],
      members: ["member@example.net"],
      extra: `moderators: [${l.moderator}]\nmoderator_password: "${await hashPassword(l.password)}"\nnonmembers: hold`,
    });
  const web = await WebConsole.start({
    listen: "127.0.0.1:0",
    deps: {
      settings: () => loadAll(site.configFile),
      daemon,
      logger: silentLogger(),
    },
    ...rest,
  });
  return {
    site,
    web,
    base: `http://127.0.0.1:${web.address.port}`,
    async close() {
      await web.close();
      await web.close();
      await site.cleanup();
    },
  };
}

/** One request; no redirect followed. */
export function request(
  base: string,
  method: "GET" | "POST",
  path: string,
  opts: { cookie?: string; form?: Record<string, string>; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      {
        method,
        headers: {
          ...(opts.cookie !== undefined ? { cookie: opts.cookie } : {}),
          ...(body !== undefined
            ? {
                "content-type": "application/x-www-form-urlencoded",
                "content-length": String(Buffer.byteLength(body)),
              }
            : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A logged-in browser: its cookie and its session's CSRF token (read from a page's form). */
export interface Client {
  cookie: string;
  csrf: string;
  get(path: string): Promise<Reply>;
  post(path: string, form: Record<string, string>, withCsrf?: boolean): Promise<Reply>;
}

export async function login(base: string, account: string, password: string): Promise<Client> {
  const r = await request(base, "POST", "/login", { form: { account, password } });
  if (r.status !== 303) throw new Error(`login as ${account}: ${r.status} ${r.body}`);
  const cookie = String(r.headers["set-cookie"]?.[0] ?? "").split(";")[0] ?? "";
  const page = await request(base, "GET", "/held", { cookie });
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (csrf === undefined) throw new Error("no CSRF token on /held");
  return {
    cookie,
    csrf,
    get: (path) => request(base, "GET", path, { cookie }),
    post: (path, form, withCsrf = true) =>
      request(base, "POST", path, { cookie, form: withCsrf ? { csrf, ...form } : form }),
  };
}
