/** `cluster:` of `qrunner.yaml`: this node's name and weight, the slices, and the etcd holding the leases. */
import { z } from "zod";
import { duration } from "./schema-units.js";

/** Where cluster mode keeps its node registry and slice leases: an etcd v3 cluster. */
export const etcdSchema = z
  .object({
    endpoints: z
      .array(
        z
          .string()
          .regex(/^https?:\/\/[^\s/]+\/?$/, "an etcd client URL such as http://etcd1.example.net:2379")
          .describe("an etcd member's client URL"),
      )
      .min(1)
      .describe("the etcd members' client URLs (all of them: the client fails over between them)"),
    prefix: z
      .string()
      .regex(/^\/[\x21-\x7e]*\/$/, "a key prefix starting and ending with '/', e.g. /qrunner/")
      .default("/qrunner/")
      .describe("the keys of this cluster in etcd; give clusters sharing one etcd their own prefix"),
    tls: z
      .object({
        ca: z.string().describe("CA certificate (PEM) that signed the etcd members' certificates"),
        cert: z.string().optional().describe("client certificate (PEM), when etcd asks for one"),
        key: z.string().optional().describe("the client certificate's private key (PEM)"),
      })
      .strict()
      .refine(
        (t) => (t.cert === undefined) === (t.key === undefined),
        "give both `cert` and `key`, or neither",
      )
      .optional()
      .describe("TLS to etcd (https:// endpoints); paths relative to the config file"),
  })
  .strict();

/** The error for a `cluster:` section written for the lock-file leases of earlier releases. */
export const ETCD_REQUIRED =
  "cluster mode now keeps its node registry and slice leases in etcd: add `etcd: { endpoints: [...] }` " +
  "(the lock files in qfiles/.cluster are no longer used; see docs/cluster.md)";

/**
 * Cluster mode: the nodes (masters with their own state directories) sharing one `qfiles` split
 * `slices` equal slices between them; who holds which slice is kept in etcd, under leases with a
 * TTL of `lease`. Every node must use the same `slices` (a node refuses to start otherwise).
 */
export const clusterSchema = z
  .object({
    node: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
        "letters, digits, '.', '_' and '-', at most 64, not starting with '.'",
      )
      .optional()
      .describe("this node's name, unique in the cluster; default the host name"),
    slices: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(16)
      .describe("slices of the hash space the nodes share out"),
    weight: z
      .number()
      .positive()
      .default(1)
      .describe("this node's share of the slices relative to the other live nodes"),
    lease: duration
      .refine((ms) => ms >= 3000, "must be at least 3s (the node fences its workers at half of it)")
      .refine((ms) => ms % 1000 === 0, "must be whole seconds (etcd lease TTLs are in seconds)")
      .default("15s")
      .describe(
        "TTL of this node's etcd lease: a node that stops renewing it loses its slices this long after",
      ),
    etcd: etcdSchema
      .optional()
      .describe("the etcd cluster holding the node registry and slice leases (required)"),
  })
  .strict()
  .transform((c, ctx) => {
    if (c.etcd === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: ETCD_REQUIRED });
      return z.NEVER;
    }
    return { ...c, etcd: c.etcd };
  });
