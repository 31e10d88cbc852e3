// One contract for the registry store, run against both drivers: embedded and real Redis.
import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { EdgeSchema, SessionSchema } from "../../../gen/chat/connection/v1/connection_pb.js";
import { openRedis } from "../../../packages/runtime/src/redis.js";
import { pickEdge } from "../src/domain/liveness.js";
import { createEmbeddedRegistry } from "../src/store/embedded.js";
import type { RegistryStore } from "../src/store/port.js";
import { createRedisRegistry } from "../src/store/redis.js";

type Factory = (now: () => number) => Promise<RegistryStore>;

function registryContract(name: string, factory: Factory): void {
  describe(`registry store contract: ${name}`, () => {
    let clock = Date.now();
    const now = () => clock;
    const stores: RegistryStore[] = [];
    const open = async () => {
      const s = await factory(now);
      stores.push(s);
      return s;
    };
    after(async () => {
      for (const s of stores) await s.close();
    });
    const run = randomBytes(4).toString("hex");
    const session = (user: string, id: string, edge = "e1") =>
      create(SessionSchema, { sessionId: `${id}-${run}`, userId: `${user}-${run}`, deviceId: `dev-${id}`, edgeId: `${edge}-${run}` });

    it("lists every live session of each user, and nothing for unknown users", async () => {
      const store = await open();
      await store.putSessions([session("alice", "s1"), session("alice", "s2", "e2"), session("bob", "s3")], 30_000);
      const listed = await store.listSessions([`alice-${run}`, `bob-${run}`, `nobody-${run}`]);
      assert.deepEqual(listed.get(`alice-${run}`)?.map((s) => s.sessionId).sort(), [`s1-${run}`, `s2-${run}`]);
      assert.deepEqual(listed.get(`bob-${run}`)?.map((s) => s.edgeId), [`e1-${run}`]);
      assert.deepEqual(listed.get(`nobody-${run}`) ?? [], []);
    });

    it("a session not refreshed within its TTL is gone; a refreshed one lives on", async () => {
      const store = await open();
      await store.putSessions([session("carol", "a"), session("carol", "b")], 1_000);
      clock += 800;
      await store.putSessions([session("carol", "b")], 1_000);
      clock += 400;
      const listed = await store.listSessions([`carol-${run}`]);
      assert.deepEqual(listed.get(`carol-${run}`)?.map((s) => s.sessionId), [`b-${run}`]);
    });

    it("removes sessions and counts only those that existed", async () => {
      const store = await open();
      await store.putSessions([session("dave", "x"), session("dave", "y")], 30_000);
      assert.equal(await store.removeSessions([session("dave", "x"), session("dave", "zz")]), 1);
      assert.deepEqual((await store.listSessions([`dave-${run}`])).get(`dave-${run}`)?.map((s) => s.sessionId), [`y-${run}`]);
    });

    it("keeps edges while they heartbeat, and forgets dead ones", async () => {
      const store = await open();
      const edge = (id: string, connections: number, draining = false) =>
        create(EdgeSchema, { edgeId: `${id}-${run}`, grpcAddress: "127.0.0.1:1", connections, draining, heartbeatAtMs: BigInt(clock) });
      await store.putEdge(edge("busy", 10), 1_000);
      await store.putEdge(edge("idle", 1), 1_000);
      await store.putEdge(edge("leaving", 0, true), 1_000);
      const mine = (await store.listEdges()).filter((e) => e.edgeId.endsWith(run));
      assert.equal(mine.length, 3);
      assert.equal(pickEdge(mine, clock, 1_000)?.edgeId, `idle-${run}`, "least loaded, not draining");
      clock += 1_500;
      assert.equal((await store.listEdges()).filter((e) => e.edgeId.endsWith(run)).length, 0);
    });

    it("answers its health check", async () => {
      await (await open()).health();
    });
  });
}

registryContract("embedded", async (now) => createEmbeddedRegistry(now));
registryContract("redis", async (now) => {
  const url = process.env["REDIS_URL"] ?? assert.fail("REDIS_URL is not set: run through 'make test' (real Redis required)");
  // Keys of its own: its clock must not expire the edges of meshes running beside it.
  return createRedisRegistry(await openRedis(url), { keyPrefix: `chat-test-${randomBytes(4).toString("hex")}:conn`, now });
});
