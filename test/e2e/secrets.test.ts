/**
 * Finding 9 of issue 15 (the secrets part): the SMTP password reaches only the workers that deliver
 * (outgoing, backoff), whether it comes from an environment variable (`auth.pass_env`) or from a
 * systemd credential (`auth.pass_credential`, read from $CREDENTIALS_DIRECTORY/NAME). A real master,
 * real workers (their /proc/PID/environ read), a real SMTP server that wants the password.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { MasterStatus } from "../../src/master/status-file.js";
import { message, runCli, waitFor, type Site, runOnce } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";
import { tempDir } from "../helpers/tmp.js";

const SECRET = "s3cret-for-the-sink";
const DEV = { address: "dev@example.org", members: ["alice@example.net"] };

const t = testScope();

function hostLine(port: number, auth: string): string {
  return (
    `smtp:\n  hosts:\n    - { host: 127.0.0.1, port: ${port}, allow_plaintext_auth: true, auth: ${auth} }\n` +
    "backoff: { schedule: [1h], max_age: 5d }\n"
  );
}

/** The environment of each running worker, by runner name, from /proc/PID/environ. */
async function workerEnvs(s: Site): Promise<Map<string, Map<string, string>>> {
  let status: MasterStatus | null = null;
  await waitFor(
    "every worker ready",
    async () => {
      try {
        const st = JSON.parse(await readFile(path.join(s.state, "status.json"), "utf8")) as MasterStatus;
        if (st.workers.length === 6 && st.workers.every((w) => w.state === "ready" && w.pid !== null))
          status = st;
      } catch {
        // not written yet
      }
      return status !== null;
    },
    30_000,
  );
  const out = new Map<string, Map<string, string>>();
  for (const w of (status as MasterStatus | null)?.workers ?? []) {
    const raw = await readFile(`/proc/${w.pid}/environ`, "utf8");
    const env = new Map<string, string>();
    for (const kv of raw.split("\0").filter(Boolean)) {
      const i = kv.indexOf("=");
      env.set(kv.slice(0, i), kv.slice(i + 1));
    }
    out.set(w.runner, env);
  }
  return out;
}

describe.skipIf(process.platform !== "linux")("SMTP secrets reach only the delivering workers", () => {
  it("pass_env: outgoing and backoff get the variable; incoming, bounce, command and archive do not", async () => {
    const sink = await t.sink({ auth: { user: "qr", pass: SECRET } });
    const site = await t.site(hostLine(sink.port, "{ user: qr, pass_env: QR_TEST_SMTP_PASS }"), [DEV]);
    t.spawn(["start", "-C", site.configFile], { env: { QR_TEST_SMTP_PASS: SECRET } });
    const envs = await workerEnvs(site);
    expect([...envs.keys()].sort()).toEqual([
      "archive",
      "backoff",
      "bounce",
      "command",
      "incoming",
      "outgoing",
    ]);
    for (const [runner, env] of envs) {
      const smtp = runner === "outgoing" || runner === "backoff";
      expect(env.get("QR_TEST_SMTP_PASS"), runner).toBe(smtp ? SECRET : undefined);
      // the rest of the environment is the master's
      expect(env.get("PATH"), runner).toBe(process.env["PATH"]);
    }
    // and the delivering worker logs in with it
    const inj = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
      input: message({ from: "alice@example.net", id: "<env-1@x>" }),
    });
    expect(inj.code).toBe(0);
    await sink.waitFor(1, 30_000);
    expect(sink.logins).toBeGreaterThan(0);
  });

  it("pass_credential: the password is read from $CREDENTIALS_DIRECTORY/NAME, which only outgoing and backoff see", async () => {
    const sink = await t.sink({ auth: { user: "qr", pass: SECRET } });
    const credDir = t.own(await tempDir("qrunner-cred-")).dir;
    await writeFile(path.join(credDir, "smtp-pass"), SECRET + "\n", { mode: 0o400 });
    const site = await t.site(hostLine(sink.port, "{ user: qr, pass_credential: smtp-pass }"), [DEV]);
    const master = t.spawn(["start", "-C", site.configFile], { env: { CREDENTIALS_DIRECTORY: credDir } });
    const envs = await workerEnvs(site);
    for (const [runner, env] of envs) {
      const smtp = runner === "outgoing" || runner === "backoff";
      expect(env.get("CREDENTIALS_DIRECTORY"), runner).toBe(smtp ? credDir : undefined);
    }
    const inj = await runCli(["inject", "-C", site.configFile, "--to=dev@example.org"], {
      input: message({ from: "alice@example.net", id: "<cred-1@x>" }),
    });
    expect(inj.code).toBe(0);
    await sink.waitFor(1, 30_000);
    expect(sink.logins).toBeGreaterThan(0);
    expect(master.stdout() + master.stderr()).not.toContain(SECRET);
  });

  it("pass_credential without $CREDENTIALS_DIRECTORY stops the outgoing worker with 78, naming the credential", async () => {
    const site = await t.site(hostLine(2525, "{ user: qr, pass_credential: smtp-pass }"), [DEV]);
    const r = await runOnce(site, "outgoing", {
      env: { CREDENTIALS_DIRECTORY: "" },
    });
    expect(r.code).toBe(78);
    expect(r.stderr + r.stdout).toContain("credential smtp-pass (auth.pass_credential)");
    expect(r.stderr + r.stdout).toContain("LoadCredential=smtp-pass:");
  });
});
