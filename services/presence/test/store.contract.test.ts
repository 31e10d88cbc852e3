// One contract for the presence store, run against both drivers: embedded and real Redis. Time is
// passed in, so expiry is tested without waiting.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { openRedis } from "../../../packages/runtime/src/redis.js";
import { createEmbeddedPresence } from "../src/store/embedded.js";
import type { PresenceStore, Watcher } from "../src/store/port.js";
import { createRedisPresence } from "../src/store/redis.js";

const TTL = 30_000;

function presenceContract(name: string, open: () => Promise<PresenceStore>): void {
  describe(`presence store contract: ${name}`, () => {
    const run = randomBytes(4).toString("hex");
    const u = (n: string) => `${n}-${run}`;
    const t0 = 1_000_000_000_000;
    let store: PresenceStore;
    after(async () => store?.close());

    it("a user is online while any device is live, and goes offline once, when the last one leaves", async () => {
      store = await open();
      assert.deepEqual(await store.heartbeat("e1", [{ userId: u("ann"), deviceId: "phone" }, { userId: u("ann"), deviceId: "laptop" }], t0), [u("ann")]);
      assert.deepEqual(await store.heartbeat("e1", [{ userId: u("ann"), deviceId: "phone" }], t0 + 1_000), [], "already online");
      assert.deepEqual(await store.disconnect("e1", [{ userId: u("ann"), deviceId: "phone" }], t0 + 2_000), []);
      assert.equal((await store.get([u("ann")], t0 + 2_000)).get(u("ann"))?.online, true);
      assert.deepEqual(await store.disconnect("e1", [{ userId: u("ann"), deviceId: "laptop", lastActiveMs: t0 + 2_500 }], t0 + 3_000), [{ userId: u("ann"), lastSeenMs: t0 + 2_500 }], "last seen: its last activity");
      assert.deepEqual(await store.disconnect("e1", [{ userId: u("ann"), deviceId: "laptop" }], t0 + 3_500), [], "reported once");
      assert.deepEqual((await store.get([u("ann")], t0 + 4_000)).get(u("ann")), { online: false, lastSeenMs: t0 + 2_500 });
    });

    it("a device moving to another edge stays online when the first edge reports it gone", async () => {
      await store.heartbeat("e1", [{ userId: u("amy"), deviceId: "phone" }], t0);
      assert.deepEqual(await store.heartbeat("e2", [{ userId: u("amy"), deviceId: "phone" }], t0 + 100), []);
      assert.deepEqual(await store.disconnect("e1", [{ userId: u("amy"), deviceId: "phone" }], t0 + 200), [], "still live on e2");
      assert.equal((await store.get([u("amy")], t0 + 300)).get(u("amy"))?.online, true);
      assert.deepEqual(await store.disconnect("e2", [{ userId: u("amy"), deviceId: "phone" }], t0 + 400), [{ userId: u("amy"), lastSeenMs: t0 + 400 }]);
    });

    it("a device that vanishes without closing expires: the sweep reports it once, last seen when last heard from", async () => {
      assert.deepEqual(await store.heartbeat("e1", [{ userId: u("bob"), deviceId: "phone" }], t0), [u("bob")]);
      assert.deepEqual((await store.sweep(t0 + TTL - 1_000)).filter((g) => g.userId === u("bob")), []);
      assert.deepEqual((await store.sweep(t0 + TTL + 1)).filter((g) => g.userId === u("bob")), [{ userId: u("bob"), lastSeenMs: t0 }]);
      assert.deepEqual((await store.sweep(t0 + TTL + 10_000)).filter((g) => g.userId === u("bob")), []);
      assert.deepEqual((await store.get([u("bob"), u("nobody")], t0 + 40_000)).get(u("nobody")), { online: false });
      assert.deepEqual((await store.get([u("bob")], t0 + 40_000)).get(u("bob")), { online: false, lastSeenMs: t0 });
      assert.deepEqual(await store.heartbeat("e1", [{ userId: u("bob"), deviceId: "phone" }], t0 + 50_000), [u("bob")], "back online");
    });

    it("a refreshed device keeps its user online through the sweep", async () => {
      await store.heartbeat("e1", [{ userId: u("cy"), deviceId: "a" }, { userId: u("cy"), deviceId: "b" }], t0);
      await store.heartbeat("e1", [{ userId: u("cy"), deviceId: "b" }], t0 + 29_000);
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

    it("keeps who watches whom, up to a limit per device, until unwatched or the viewer goes offline", async () => {
      const phone: Watcher = { viewerId: u("vic"), deviceId: "phone" };
      const laptop: Watcher = { viewerId: u("vic"), deviceId: "laptop" };
      const other: Watcher = { viewerId: u("wes"), deviceId: "phone" };
      const sorted = (ws: Watcher[] | undefined) => (ws ?? []).map((w) => `${w.viewerId}/${w.deviceId}`).sort();
      assert.equal(await store.watch(phone, [u("x"), u("y")], 3), true);
      assert.equal(await store.watch(phone, [u("y"), u("z")], 3), true, "y again does not count twice");
      assert.equal(await store.watch(phone, [u("q")], 3), false, "a fourth user is past the limit");
      assert.equal(await store.watch(laptop, [u("x")], 3), true);
      assert.equal(await store.watch(other, [u("x")], 3), true);
      const w = await store.watchers([u("x"), u("y"), u("q"), u("nobody")]);
      assert.deepEqual(sorted(w.get(u("x"))), [`${u("vic")}/laptop`, `${u("vic")}/phone`, `${u("wes")}/phone`]);
      assert.deepEqual(sorted(w.get(u("y"))), [`${u("vic")}/phone`]);
      assert.equal(w.has(u("q")), false, "nothing stored past the limit");
      assert.equal(w.has(u("nobody")), false);
      await store.unwatch(phone, [u("y")]);
      assert.equal((await store.watchers([u("y")])).has(u("y")), false);
      assert.equal(await store.watch(phone, [u("q")], 3), true, "room again after unwatching");
      // A viewer still live keeps their subscriptions; once offline, all of their devices' go.
      await store.heartbeat("e1", [{ userId: u("vic"), deviceId: "phone" }], t0);
      await store.dropWatchers([u("vic")], t0 + 1_000);
      assert.equal((await store.watchers([u("x")])).get(u("x"))?.length, 3);
      await store.dropWatchers([u("vic")], t0 + TTL + 1);
      assert.deepEqual(sorted((await store.watchers([u("x"), u("z")])).get(u("x"))), [`${u("wes")}/phone`]);
      assert.equal((await store.watchers([u("z")])).has(u("z")), false);
      assert.equal(await store.watch(phone, [u("a"), u("b"), u("c")], 3), true, "a fresh start after the drop");
    });
  });
}

presenceContract("embedded", async () => createEmbeddedPresence({ ttlMs: TTL }));
presenceContract("redis", async () =>
  createRedisPresence(await openRedis(process.env["REDIS_URL"] ?? assert.fail("REDIS_URL is not set: run through 'make test' (real Redis required)")), { ttlMs: TTL, keyPrefix: `chat-test-${randomBytes(4).toString("hex")}:presence` }),
);
