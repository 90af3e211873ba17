/**
 * The etcd client of cluster mode: one `etcd3` client (gRPC, failing over between the endpoints)
 * built from `cluster.etcd`, every unary call bounded by a deadline so that a member that lost its
 * quorum or hangs never holds a step of the node up for long, and the key layout under the prefix:
 *
 *   <prefix>settings        {"slices": N}: written once by the first node, every node must match it
 *   <prefix>nodes/<node>    one record per live node (weight, host, pid), attached to its session lease
 *   <prefix>slices/<K>      the holder of slice K (its node name), attached to the holder's session lease
 *
 * Keys attached to a lease vanish with it, so a dead node's record and slices disappear by themselves
 * once its lease's TTL has run out on the etcd side; no clock of any node is compared with another's.
 */
import { readFile } from "node:fs/promises";
import { Etcd3, type IOptions, type Namespace } from "etcd3";
import type { EtcdConfig } from "../config/schema.js";
import { describeError } from "../util/errors.js";
import { ClusterEtcdError } from "./cluster-errors.js";

export const SETTINGS_KEY = "settings";
export const NODES = "nodes/";
export const SLICES = "slices/";

export const nodeKey = (node: string): string => `${NODES}${node}`;
export const sliceKey = (slice: number): string => `${SLICES}${slice}`;

/** The slice number of a `slices/<K>` key (namespace stripped), or null. */
export function sliceOfKey(key: string): number | null {
  if (!key.startsWith(SLICES)) return null;
  const k = Number(key.slice(SLICES.length));
  return Number.isInteger(k) && k >= 0 ? k : null;
}

export interface EtcdHandle {
  /** the client, for closing */
  readonly client: Etcd3;
  /** the client seen through the cluster's prefix: every key above is relative to it */
  readonly ns: Namespace;
  /** deadline for a unary call, as gRPC wants it (ms since the epoch, local only) */
  deadline(): Date;
  close(): void;
}

type HostPolicy = ReturnType<NonNullable<NonNullable<IOptions["faultHandling"]>["host"]>>;

/**
 * No circuit breaker per member. etcd3's default shuts a member out for 5 s after three failures in a
 * row: with one endpoint (or every member unreachable a moment) no keep-alive could be sent for 5 s
 * after the network is back, a third of a 15 s lease. Every call here has a deadline instead, and the
 * client's retry over the other members stays. (etcd3 calls only `execute` on this policy.)
 */
function noBreaker(): HostPolicy {
  const policy = { execute: <T>(fn: () => T | PromiseLike<T>): Promise<T> => Promise.resolve().then(fn) };
  return policy as unknown as HostPolicy;
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new ClusterEtcdError(`cannot read the etcd ${what} ${file}: ${describeError(err)}`, { cause: err });
  }
}

/**
 * A client for these endpoints (nothing is contacted yet). `callTimeoutMs` bounds each unary call;
 * watches and keep-alive streams are bounded by their users.
 */
export async function openEtcd(config: EtcdConfig, callTimeoutMs: number): Promise<EtcdHandle> {
  const options: IOptions = {
    hosts: [...config.endpoints],
    dialTimeout: callTimeoutMs,
    // after a member comes back (or the network), dial again within seconds, not gRPC's default of
    // up to two minutes of backoff
    grpcOptions: { "grpc.initial_reconnect_backoff_ms": 500, "grpc.max_reconnect_backoff_ms": 3000 },
    faultHandling: { host: noBreaker },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
  };
  if (config.tls) {
    options.credentials = {
      rootCertificate: await readPem(config.tls.ca, "CA certificate"),
      ...(config.tls.cert !== undefined
        ? { certChain: await readPem(config.tls.cert, "client certificate") }
        : {}),
      ...(config.tls.key !== undefined ? { privateKey: await readPem(config.tls.key, "client key") } : {}),
    };
  }
  const client = new Etcd3(options);
  let closed = false;
  return {
    client,
    ns: client.namespace(config.prefix),
    deadline: () => new Date(Date.now() + callTimeoutMs),
    close() {
      if (closed) return;
      closed = true;
      client.close();
    },
  };
}
