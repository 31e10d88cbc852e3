// One contract for the event bus, run against both drivers: memory and real Kafka.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { createKafkaBus } from "../src/bus/kafka.js";
import { createMemoryBus } from "../src/bus/memory.js";
import { namespaced } from "../src/bus/namespace.js";
import type { Bus, BusRecord, Subscription } from "../src/bus/port.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Collects handled records and resolves once `n` have arrived. */
function collector() {
  const records: BusRecord[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    records,
    push(batch: BusRecord[]) {
      records.push(...batch);
      for (const w of waiters) if (records.length >= w.n) w.resolve();
    },
    until(n: number, ms = 20_000): Promise<void> {
      if (records.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${records.length} of ${n} records within ${ms} ms`)), ms);
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

/** Waits until the subscription has committed everything it was given. */
async function noLag(sub: Subscription): Promise<void> {
  const deadline = Date.now() + 10_000;
  let lag = Infinity;
  while (lag > 0 && Date.now() < deadline) {
    lag = (await sub.status()).reduce((sum, p) => sum + p.lag, 0);
    if (lag > 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(lag, 0, "lag did not reach 0");
}

function busContract(name: string, open: () => Bus): void {
  describe(`bus contract: ${name}`, () => {
    const bus = open();
    const subs: Subscription[] = [];
    const run = randomBytes(4).toString("hex");
    let n = 0;
    const topic = async () => {
      const t = `test.${run}.${n++}`;
      await bus.ensureTopics([{ name: t, partitions: 3 }]);
      return t;
    };
    after(async () => {
      for (const s of subs) await s.stop();
      await bus.close();
    });

    it("keeps per-key order and carries headers", async () => {
      const t = await topic();
      const got = collector();
      subs.push(await bus.subscribe({ groupId: `g-${run}-order`, topics: [t], fromBeginning: true, handle: async (b) => got.push(b) }));
      for (let i = 0; i < 30; i++) await bus.publish(t, [{ key: `k${i % 3}`, value: enc(`${i}`), headers: { traceparent: `tp-${i}` } }]);
      await got.until(30);
      for (const key of ["k0", "k1", "k2"]) {
        const values = got.records.filter((r) => r.key === key).map((r) => Number(dec(r.value)));
        assert.deepEqual(values, [...values].sort((a, b) => a - b), `order of ${key}`);
        assert.equal(values.length, 10);
      }
      assert.ok(got.records.every((r) => r.headers["traceparent"] === `tp-${dec(r.value)}`));
    });

    it("redelivers a batch whose handler failed, and never skips it", async () => {
      const t = await topic();
      const got = collector();
      let failures = 0;
      subs.push(
        await bus.subscribe({
          groupId: `g-${run}-retry`,
          topics: [t],
          fromBeginning: true,
          handle: async (b) => {
            if (failures < 2) {
              failures++;
              throw new Error("transient");
            }
            got.push(b);
          },
        }),
      );
      await bus.publish(t, [{ key: "a", value: enc("x") }]);
      await got.until(1);
      assert.equal(failures, 2);
      assert.deepEqual(got.records.map((r) => dec(r.value)), ["x"]);
    });

    it("commits after handling: a new member of the group does not see handled records; another group sees all", async () => {
      const t = await topic();
      const first = collector();
      const sub = await bus.subscribe({ groupId: `g-${run}-commit`, topics: [t], fromBeginning: true, handle: async (b) => first.push(b) });
      await bus.publish(t, [0, 1, 2, 3].map((i) => ({ key: `k${i}`, value: enc(`old${i}`) })));
      await first.until(4);
      await noLag(sub);
      await sub.stop();
      const second = collector();
      subs.push(await bus.subscribe({ groupId: `g-${run}-commit`, topics: [t], fromBeginning: true, handle: async (b) => second.push(b) }));
      const other = collector();
      subs.push(await bus.subscribe({ groupId: `g-${run}-other`, topics: [t], fromBeginning: true, handle: async (b) => other.push(b) }));
      await bus.publish(t, [{ key: "k0", value: enc("new") }]);
      await second.until(1);
      await other.until(5);
      assert.deepEqual(second.records.map((r) => dec(r.value)), ["new"]);
      assert.deepEqual(other.records.map((r) => dec(r.value)).sort(), ["new", "old0", "old1", "old2", "old3"]);
    });

    it("reports no lag once everything is handled", async () => {
      const t = await topic();
      const got = collector();
      const sub = await bus.subscribe({ groupId: `g-${run}-lag`, topics: [t], fromBeginning: true, handle: async (b) => got.push(b) });
      subs.push(sub);
      await bus.publish(t, [{ key: "a", value: enc("1") }, { key: "b", value: enc("2") }]);
      await got.until(2);
      await noLag(sub);
    });

    it("answers its health check", async () => {
      await bus.health();
    });
  });
}

busContract("memory", () => createMemoryBus());
busContract("kafka", () => {
  const brokers = process.env["KAFKA_BROKERS"] ?? assert.fail("KAFKA_BROKERS is not set: run through 'make test' (real Kafka required)");
  return createKafkaBus({ brokers: brokers.split(","), clientId: "bus-contract" });
});

describe("bus namespaces", () => {
  it("keep two meshes on one broker apart, and show handlers the plain topic names", async () => {
    const broker = createMemoryBus();
    const a = namespaced(broker, "a.");
    const b = namespaced(broker, "b.");
    const gotA = collector();
    const gotB = collector();
    const subA = await a.subscribe({ groupId: "routing", topics: ["chat.messages.v1"], handle: async (r) => gotA.push(r) });
    const subB = await b.subscribe({ groupId: "routing", topics: ["chat.messages.v1"], handle: async (r) => gotB.push(r) });
    await a.publish("chat.messages.v1", [{ key: "k", value: enc("for a") }]);
    await b.publish("chat.messages.v1", [{ key: "k", value: enc("for b") }]);
    await gotA.until(1);
    await gotB.until(1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(gotA.records.map((r) => [r.topic, dec(r.value)]), [["chat.messages.v1", "for a"]]);
    assert.deepEqual(gotB.records.map((r) => [r.topic, dec(r.value)]), [["chat.messages.v1", "for b"]]);
    await subA.stop();
    await subB.stop();
  });
});
