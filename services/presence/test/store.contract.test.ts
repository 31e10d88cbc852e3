// One contract for the presence store, run against both drivers: embedded and real Redis. Time is
// passed in, so expiry is tested without waiting.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { openRedis } from "../../../packages/runtime/src/redis.js";
import { createEmbeddedPresence } from "../src/store/embedded.js";
import type { PresenceStore } from "../src/store/port.js";
import { createRedisPresence } from "../src/store/redis.js";

function presenceContract(name: string, open: () => Promise<PresenceStore>): void {
  describe(`presence store contract: ${name}`, () => {
    const run = randomBytes(4).toString("hex");
    const u = (n: string) => `${n}-${run}`;
    const t0 = 1_000_000_000_000;
    let store: PresenceStore;
    after(async () => store?.close());

    it("a user is online while any device is live, and goes offline once, when the last one leaves", async () => {
      store = await open();
      assert.deepEqual(await store.heartbeat([{ userId: u("ann"), deviceId: "phone" }, { userId: u("ann"), deviceId: "laptop" }], t0 + 30_000, t0), [u("ann")]);
      assert.deepEqual(await store.heartbeat([{ userId: u("ann"), deviceId: "phone" }], t0 + 31_000, t0 + 1_000), [], "already online");
      assert.deepEqual(await store.disconnect([{ userId: u("ann"), deviceId: "phone" }], t0 + 2_000), []);
      assert.equal((await store.get([u("ann")], t0 + 2_000)).get(u("ann"))?.online, true);
      assert.deepEqual(await store.disconnect([{ userId: u("ann"), deviceId: "laptop" }], t0 + 3_000), [{ userId: u("ann"), lastSeenMs: t0 + 3_000 }]);
      assert.deepEqual(await store.disconnect([{ userId: u("ann"), deviceId: "laptop" }], t0 + 3_500), [], "reported once");
      assert.deepEqual((await store.get([u("ann")], t0 + 4_000)).get(u("ann")), { online: false, lastSeenMs: t0 + 3_000 });
    });

    it("a device that vanishes without closing expires: the sweep reports it once, last seen at its deadline", async () => {
      assert.deepEqual(await store.heartbeat([{ userId: u("bob"), deviceId: "phone" }], t0 + 30_000, t0), [u("bob")]);
      assert.deepEqual((await store.sweep(t0 + 29_000)).filter((g) => g.userId === u("bob")), []);
      assert.deepEqual((await store.sweep(t0 + 30_001)).filter((g) => g.userId === u("bob")), [{ userId: u("bob"), lastSeenMs: t0 + 30_000 }]);
      assert.deepEqual((await store.sweep(t0 + 40_000)).filter((g) => g.userId === u("bob")), []);
      assert.deepEqual((await store.get([u("bob"), u("nobody")], t0 + 40_000)).get(u("nobody")), { online: false });
      assert.deepEqual(await store.heartbeat([{ userId: u("bob"), deviceId: "phone" }], t0 + 80_000, t0 + 50_000), [u("bob")], "back online");
    });

    it("a refreshed device keeps its user online through the sweep", async () => {
      await store.heartbeat([{ userId: u("cy"), deviceId: "a" }, { userId: u("cy"), deviceId: "b" }], t0 + 30_000, t0);
      await store.heartbeat([{ userId: u("cy"), deviceId: "b" }], t0 + 60_000, t0 + 29_000);
      assert.deepEqual((await store.sweep(t0 + 30_500)).filter((g) => g.userId === u("cy")), []);
      assert.equal((await store.get([u("cy")], t0 + 30_500)).get(u("cy"))?.online, true);
    });

    it("stores who hides last seen", async () => {
      await store.setShowLastSeen(u("dee"), false);
      assert.deepEqual([...(await store.showsLastSeen([u("dee"), u("eli")]))], [u("eli")]);
      await store.setShowLastSeen(u("dee"), true);
      assert.equal((await store.showsLastSeen([u("dee")])).size, 1);
      await store.health();
    });
  });
}

presenceContract("embedded", async () => createEmbeddedPresence());
presenceContract("redis", async () =>
  createRedisPresence(await openRedis(process.env["REDIS_URL"] ?? assert.fail("REDIS_URL is not set: run through 'make test' (real Redis required)"))),
);
