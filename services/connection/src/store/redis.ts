// Redis driver. One hash per user (session id -> entry) and one hash of edges (edge id -> entry).
// An entry is 8 bytes of expiry (Unix ms, big-endian) followed by the protobuf message, so a
// registry read is one HGETALL per user and expired entries are pruned as they are met.
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { Redis } from "ioredis";
import { EdgeSchema, SessionSchema } from "../../../../gen/chat/connection/v1/connection_pb.js";
import { isLive } from "../domain/liveness.js";
import type { RegistryStore } from "./port.js";


function encode<D extends DescMessage>(schema: D, value: MessageShape<D>, expiresAtMs: number): Buffer {
  const body = toBinary(schema, value);
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeBigUInt64BE(BigInt(expiresAtMs), 0);
  out.set(body, 8);
  return out;
}

function decode<D extends DescMessage>(schema: D, raw: Buffer): { value: MessageShape<D>; expiresAtMs: number } {
  return { expiresAtMs: Number(raw.readBigUInt64BE(0)), value: fromBinary(schema, raw.subarray(8)) };
}

/** Reads a hash of entries, returning the live ones and deleting the expired ones. */
async function liveEntries<D extends DescMessage>(redis: Redis, key: string, schema: D, nowMs: number): Promise<MessageShape<D>[]> {
  const raw = await redis.hgetallBuffer(key);
  const live: MessageShape<D>[] = [];
  const expired: string[] = [];
  for (const [field, value] of Object.entries(raw)) {
    const entry = decode(schema, value);
    if (isLive(entry.expiresAtMs, nowMs)) live.push(entry.value);
    else expired.push(field);
  }
  if (expired.length > 0) await redis.hdel(key, ...expired);
  return live;
}

export function createRedisRegistry(redis: Redis, opts: { keyPrefix?: string; now?: () => number } = {}): RegistryStore {
  const prefix = opts.keyPrefix ?? "chat:conn";
  const now = opts.now ?? Date.now;
  const sessionsKey = (userId: string) => `${prefix}:sessions:{${userId}}`;
  const EDGES_KEY = `${prefix}:edges`;
  return {
    async putSessions(list, ttlMs) {
      if (list.length === 0) return;
      const expiresAtMs = now() + ttlMs;
      const pipeline = redis.pipeline();
      for (const session of list) {
        const key = sessionsKey(session.userId);
        pipeline.hset(key, session.sessionId, encode(SessionSchema, session, expiresAtMs));
        pipeline.pexpire(key, ttlMs);
      }
      await pipeline.exec();
    },
    async removeSessions(list) {
      if (list.length === 0) return 0;
      const pipeline = redis.pipeline();
      for (const session of list) pipeline.hdel(sessionsKey(session.userId), session.sessionId);
      const results = (await pipeline.exec()) ?? [];
      return results.reduce((sum, [err, n]) => sum + (err === null ? Number(n) : 0), 0);
    },
    async listSessions(userIds) {
      const t = now();
      const lists = await Promise.all(userIds.map((u) => liveEntries(redis, sessionsKey(u), SessionSchema, t)));
      return new Map(userIds.map((u, i) => [u, lists[i] ?? []]));
    },
    async putEdge(edge, ttlMs) {
      await redis.hset(EDGES_KEY, edge.edgeId, encode(EdgeSchema, edge, now() + ttlMs));
    },
    async listEdges() {
      return liveEntries(redis, EDGES_KEY, EdgeSchema, now());
    },
    async health() {
      await redis.ping();
    },
    async close() {
      redis.disconnect();
    },
  };
}
