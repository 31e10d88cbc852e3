// The kafkajs request-queue fix (bus/kafkajs-idle.ts): an idle Kafka client on the real broker
// (KAFKA_BROKERS, 127.0.0.1:19092 by default) no longer re-checks its queues a thousand times a
// second, and a request held back by client-side throttling is still sent once the throttle ends.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { createKafkaBus } from "../src/bus/kafka.js";
import { RequestQueue } from "../src/bus/kafkajs-idle.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe("kafkajs request queues", () => {
  it("an idle producer and consumer re-check their queues only when answers arrive", async () => {
    const bus = createKafkaBus({ brokers: (process.env["KAFKA_BROKERS"] ?? "127.0.0.1:19092").split(","), clientId: "kafkajs-idle" });
    const topic = `test.idle.${randomBytes(4).toString("hex")}`;
    try {
      await bus.ensureTopics([{ name: topic, partitions: 1 }]);
      let got = 0;
      const sub = await bus.subscribe({ groupId: `${topic}-g`, topics: [topic], fromBeginning: true, handle: async (batch) => void (got += batch.length) });
      await bus.publish(topic, [{ key: "k", value: new TextEncoder().encode("v") }]);
      for (let i = 0; i < 200 && got === 0; i++) await sleep(50);
      assert.equal(got, 1);
      await sleep(500); // the commit and the group's settling after the first record

      const original = RequestQueue.prototype.checkPendingRequests;
      let checks = 0;
      RequestQueue.prototype.checkPendingRequests = function (this: typeof RequestQueue.prototype) {
        checks++;
        original.call(this);
      };
      try {
        await sleep(2_000);
      } finally {
        RequestQueue.prototype.checkPendingRequests = original;
      }
      // Idle, the client answers a long-polling fetch every 500 ms and a heartbeat every second per
      // connection: a few checks a second (a metadata refresh or a rebalance adds a few more).
      // Unfixed, each connection checked about 1,000 times a second: 5,700-6,600 in these 2 s.
      assert.ok(checks < 300, `${checks} queue checks in 2 s of idleness`);
      await sub.stop();
    } finally {
      await bus.close();
    }
  });

  it("sends a request held back by client-side throttling once the throttle ends, and arms no timer after", async () => {
    const queue = new RequestQueue({ maxInFlightRequests: null, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: "t", broker: "b", logger: quiet });
    let sentAt = 0;
    const start = Date.now();
    try {
      (queue as unknown as { maybeThrottle(ms: number): void }).maybeThrottle(80);
      (queue as unknown as { push(r: object): void }).push({ entry: { correlationId: 1, apiKey: 0, apiName: "Produce", apiVersion: 0, resolve: () => undefined, reject: () => undefined }, expectResponse: true, sendRequest: () => (sentAt = Date.now()) });
      assert.equal(sentAt, 0, "sent while throttled");
      assert.notEqual(queue.throttleCheckTimeoutId, null, "no timer armed for the queued request");
      await sleep(200);
      assert.ok(sentAt - start >= 70, `sent ${sentAt - start} ms after the throttle began`);
      (queue as unknown as { fulfillRequest(r: object): void }).fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
      assert.equal(queue.throttleCheckTimeoutId, null, "a timer was armed with nothing pending");
    } finally {
      // Unfixed, the queue re-arms its timer forever: stop it so a failure does not hang the run.
      (queue as unknown as { destroy(): void }).destroy();
    }
  });
});
