/**
 * `qrunner web hash-password` (the password on stdin, never argv) and `qrunner web` serving the console
 * alone, without a master: the real CLI, a real port on loopback, SIGTERM to stop it.
 */
import http from "node:http";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { verifyPassword } from "../../src/lists/passwords.js";
import { freePort } from "../helpers/etcd.js";
import { makeSite, requireBuild, runCli, spawnCli, waitFor, type Site } from "../helpers/site.js";

beforeAll(() => requireBuild());

let site: Site | undefined;
afterEach(async () => {
  await site?.cleanup();
  site = undefined;
});

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("qrunner web", () => {
  it("hash-password reads the first line of stdin and prints a hash that verifies it", async () => {
    const r = await runCli(["web", "hash-password"], { input: "s3cret pass\nignored second line\n" });
    expect(r.code).toBe(0);
    const hash = r.stdout.trim();
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword("s3cret pass", hash)).toBe(true);
    expect(await verifyPassword("s3cret pass\n", hash)).toBe(false);
    expect((await runCli(["web", "hash-password"], { input: "" })).code).toBe(64);
  });

  it("without web.listen (and no --listen) exits 78; with it, serves the console until SIGTERM", async () => {
    site = await makeSite("");
    const none = await runCli(["web", "-C", site.configFile]);
    expect(none.code).toBe(78);
    expect(none.stderr).toContain("web.listen");
    const port = await freePort();
    await site.writeConfig(`web: { listen: "127.0.0.1:${port}" }\n`);
    const web = spawnCli(["web", "-C", site.configFile]);
    try {
      await waitFor(
        "the console to listen",
        () => web.stdout().includes('"msg":"web console listening"'),
        20_000,
      );
      const login = await get(`http://127.0.0.1:${port}/login`);
      expect(login.status).toBe(200);
      expect(login.body).toContain('<form class="login card" method="post" action="/login">');
      // not logged in: the daemon page sends the browser to the login form
      expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(303);
    } finally {
      web.child.kill("SIGTERM");
    }
    expect((await web.exited).code).toBe(0);
  });
});
