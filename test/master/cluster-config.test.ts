/** The `cluster:` section: etcd is required now, its TLS files are checked and resolved like the others. */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import { configIssues, lines, tempDirEach } from "../config/helpers.js";

const t = tempDirEach("qrunner-config-");

describe("the cluster section", () => {
  it("without etcd (the lock-file leases of earlier releases) is an error that says etcd is required now", async () => {
    const file = await t.write(
      "q.yaml",
      lines("qfiles: q", "cluster: { node: mail1, slices: 16, lease: 30s }"),
    );
    const issues = await configIssues(file);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file, line: 2 });
    expect(issues[0]?.message).toMatch(
      /^cluster: cluster mode now keeps .* in etcd: add `etcd: \{ endpoints/,
    );
    expect(issues[0]?.message).toMatch(/docs\/cluster\.md/);
  });

  it("takes etcd endpoints, a prefix and TLS files relative to the config file, with defaults", async () => {
    await t.write("tls/ca.pem", "ca");
    await t.write("tls/node.pem", "cert");
    await t.write("tls/node.key", "key");
    const file = await t.write(
      "conf/q.yaml",
      lines(
        "cluster:",
        "  node: mail1",
        "  etcd:",
        "    endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379]",
        "    tls: { ca: ../tls/ca.pem, cert: ../tls/node.pem, key: ../tls/node.key }",
      ),
    );
    const c = await loadConfig(file);
    expect(c.cluster).toEqual({
      node: "mail1",
      slices: 16,
      weight: 1,
      lease: 15_000,
      etcd: {
        endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
        prefix: "/qrunner/",
        tls: {
          ca: path.join(t.dir, "tls/ca.pem"),
          cert: path.join(t.dir, "tls/node.pem"),
          key: path.join(t.dir, "tls/node.key"),
        },
      },
    });
  });

  it("rejects bad endpoints, a prefix without slashes, a lone cert, unreadable TLS files, a lease in ms", async () => {
    const file = await t.write(
      "q.yaml",
      lines(
        "cluster:",
        "  lease: 2500ms",
        "  etcd:",
        "    endpoints: [etcd1:2379]",
        "    prefix: qrunner",
        "    tls: { ca: missing.pem, cert: c.pem }",
      ),
    );
    const text = (await configIssues(file)).map((i) => `${i.line}: ${i.message}`).join("\n");
    expect(text).toMatch(/^2: cluster.lease: .*at least 3s/m);
    expect(text).toMatch(/cluster.lease: .*whole seconds/);
    expect(text).toMatch(/^4: cluster.etcd.endpoints\[0\]: .*etcd client URL/m);
    expect(text).toMatch(/^5: cluster.etcd.prefix: .*starting and ending with '\/'/m);
    expect(text).toMatch(/^6: cluster.etcd.tls: give both `cert` and `key`/m);
    const files = await t.write(
      "r.yaml",
      lines("cluster:", "  etcd:", "    endpoints: [https://etcd1:2379]", "    tls: { ca: missing.pem }"),
    );
    expect((await configIssues(files)).map((i) => i.message).join("\n")).toMatch(
      /cluster.etcd.tls.ca: .*missing\.pem/,
    );
  });
});
