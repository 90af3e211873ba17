/**
 * Hosts going down and coming back, with real worker processes and real SMTP sinks: the mail of a down
 * host goes through `backoff` to the others, the outage is logged once, the host gets its share back
 * after its probe; with every primary down the fallback delivers, and stops once a primary is back.
 */
import { describe, expect, it } from "vitest";
import { sliceOf } from "../../src/queue/slice.js";
import { waitFor } from "../helpers/site.js";
import { testScope } from "../helpers/scope.js";
import {
  CANNOT_REACH,
  REACHABLE_AGAIN,
  deliverySite,
  enqueueOutgoing,
  hostState,
  linesWith,
  notExactlyOnce,
  waitDelivered,
  waitDrained,
  type DeliverySite,
  type Sent,
  WEIGHTED,
} from "./delivery-harness.js";

const t = testScope();

async function startAll(d: DeliverySite): Promise<void> {
  await d.start("outgoing", "0/2:3,1");
  await d.start("outgoing", "1/2:3,1");
  await d.start("backoff");
}

/** Trickle small batches into outgoing until the host's shared record says it is up again. */
async function untilUp(d: DeliverySite, host: string): Promise<Sent[]> {
  const sent: Sent[] = [];
  await waitFor(`${host} to be probed back up`, async () => {
    sent.push(await enqueueOutgoing(d.site, `probe-${host}-${sent.length}`, 4));
    await new Promise((r) => setTimeout(r, 100));
    return (await hostState(d.site, host)).state === "up";
  });
  return sent;
}

describe("a host down", () => {
  it("its mail goes via backoff to the other host, the outage is logged once; back, it gets its share after its probe", async () => {
    const ds = t.own(
      await deliverySite({
        hosts: WEIGHTED,
      }),
    );
    const a = ds.sink("a");
    const b = ds.sink("b");
    await a.down();
    await startAll(ds);

    const first = await enqueueOutgoing(ds.site, "down", 1000);
    await waitDelivered([b], first.keys);
    await waitDrained(ds.site);
    expect(a.deliveryCount()).toBe(0);
    expect((await hostState(ds.site, "a")).state).toBe("down");

    await a.up();
    const probes = await untilUp(ds, "a");
    await waitDrained(ds.site);
    const aBefore = a.deliveryCount();
    const second = await enqueueOutgoing(ds.site, "back", 1000);
    const all = [...first.keys, ...probes.flatMap((p) => p.keys), ...second.keys];
    await waitDelivered(ds.sinks.values(), all);
    await waitDrained(ds.site);
    await ds.stop();

    expect(notExactlyOnce(ds.sinks.values(), all)).toEqual([]);
    // once up again, every entry of a's slice went to a (none through backoff)
    const wrong = second.ids.filter(
      (id, i) => (sliceOf(id, 2, [3, 1]) === 0 ? a : b).deliveries().get(second.keys[i] ?? "") !== 1,
    );
    expect(wrong).toEqual([]);
    const aShare = a.deliveryCount() - aBefore;
    console.info(
      `a down: ${first.keys.length} to b; a back after ${probes.length} probe batches; then a=${aShare} of ${second.keys.length}`,
    );

    const logs = ds.logs();
    const viaBackoff = linesWith(logs, "delivery attempt", "b").filter((l) => l["runner"] === "backoff");
    const aSlice = first.ids.filter((id) => sliceOf(id, 2, [3, 1]) === 0).length;
    expect(viaBackoff.length).toBeGreaterThanOrEqual(aSlice);
    expect(linesWith(logs, CANNOT_REACH, "a")).toHaveLength(1);
    expect(linesWith(logs, REACHABLE_AGAIN, "a")).toHaveLength(1);
    expect(linesWith(logs, CANNOT_REACH, "b")).toHaveLength(0);
  });
});

describe("every primary down", () => {
  it("the fallback receives; once a primary is back, the fallback stops receiving", async () => {
    const ds = t.own(
      await deliverySite({
        hosts: WEIGHTED,
        fallback: [{ name: "f" }],
      }),
    );
    const [a, b, f] = [ds.sink("a"), ds.sink("b"), ds.sink("f")];
    await a.down();
    await b.down();
    await startAll(ds);

    const first = await enqueueOutgoing(ds.site, "fb", 300);
    await waitDelivered([f], first.keys);
    await waitDrained(ds.site);
    expect(a.deliveryCount() + b.deliveryCount()).toBe(0);

    await b.up();
    const probes = await untilUp(ds, "b");
    await waitDrained(ds.site);
    const fBefore = f.deliveryCount();
    const second = await enqueueOutgoing(ds.site, "primary", 300);
    await waitDelivered([b], second.keys);
    await waitDrained(ds.site);
    await ds.stop();

    const all = [...first.keys, ...probes.flatMap((p) => p.keys), ...second.keys];
    expect(notExactlyOnce(ds.sinks.values(), all)).toEqual([]);
    console.info(
      `fallback: f=${fBefore} while a, b down; after b back: f +${f.deliveryCount() - fBefore}, b=${b.deliveryCount()}`,
    );
    expect(f.deliveryCount()).toBe(fBefore);
    expect(a.deliveryCount()).toBe(0);
    const logs = ds.logs();
    expect(linesWith(logs, CANNOT_REACH, "a")).toHaveLength(1);
    expect(linesWith(logs, CANNOT_REACH, "b")).toHaveLength(1);
  });
});
