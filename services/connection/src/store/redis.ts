// Redis driver. One hash per user (session id -> entry) and one hash of edges (edge id -> entry),
// so a registry read is one HGETALL per user and expired entries are pruned as they are met. A
// session entry is "expiry<TAB>edge<TAB>device<TAB>connected at" (the user and session ids are the
// key and the field); the edges' refreshes of every session they hold go in one script call per
// batch, which costs this process little per session. An edge entry is 8 bytes of expiry (Unix
// ms, big-endian) followed by the protobuf message.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { Redis } from "ioredis";
import { EdgeSchema, SessionSchema, type Session } from "../../../../gen/chat/connection/v1/connection_pb.js";
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

/** Reads a hash of entries, returning the live ones and deleting the expired (or unreadable) ones. */
async function liveEntries<T>(redis: Redis, key: string, read: (field: string, raw: Buffer) => { value: T; expiresAtMs: number } | undefined, nowMs: number): Promise<T[]> {
  const raw = await redis.hgetallBuffer(key);
  const live: T[] = [];
  const expired: string[] = [];
  for (const [field, value] of Object.entries(raw)) {
    const entry = read(field, value);
    if (entry !== undefined && isLive(entry.expiresAtMs, nowMs)) live.push(entry.value);
    else expired.push(field);
  }
  if (expired.length > 0) await redis.hdel(key, ...expired);
  return live;
}

// ARGV: key prefix, key TTL (ms), then user, session, entry triples.
const PUT_SESSIONS = `
local prefix, ttl = ARGV[1], ARGV[2]
for i = 3, #ARGV, 3 do
  local key = prefix .. ARGV[i] .. '}'
  redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2])
  redis.call('PEXPIRE', key, ttl)
end
return 1`;

const sessionEntry = (s: Session, expiresAtMs: number): string => `${expiresAtMs}\t${s.edgeId}\t${s.deviceId}\t${s.connectedAtMs}`;

function readSession(userId: string, sessionId: string, raw: Buffer): { value: Session; expiresAtMs: number } | undefined {
  const [expiry, edgeId, deviceId, connectedAt] = raw.toString("utf8").split("\t");
  const expiresAtMs = Number(expiry);
  if (!Number.isFinite(expiresAtMs) || edgeId === undefined || deviceId === undefined || connectedAt === undefined || !/^\d+$/.test(connectedAt)) return undefined;
  return { expiresAtMs, value: create(SessionSchema, { sessionId, userId, deviceId, edgeId, connectedAtMs: BigInt(connectedAt) }) };
}

/** Sessions per script call. */
const PUT_BATCH = 2_000;

export function createRedisRegistry(redis: Redis, opts: { keyPrefix?: string; now?: () => number } = {}): RegistryStore {
  const prefix = opts.keyPrefix ?? "chat:conn";
  const now = opts.now ?? Date.now;
  const sessionsPrefix = `${prefix}:sessions:{`;
  const sessionsKey = (userId: string) => `${sessionsPrefix}${userId}}`;
  const EDGES_KEY = `${prefix}:edges`;
  return {
    async putSessions(list, ttlMs) {
      const expiresAtMs = now() + ttlMs;
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < list.length; i += PUT_BATCH) {
        const args = list.slice(i, i + PUT_BATCH).flatMap((s) => [s.userId, s.sessionId, sessionEntry(s, expiresAtMs)]);
        calls.push(redis.eval(PUT_SESSIONS, 0, sessionsPrefix, ttlMs, ...args));
      }
      await Promise.all(calls);
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
      const lists = await Promise.all(userIds.map((u) => liveEntries(redis, sessionsKey(u), (field, raw) => readSession(u, field, raw), t)));
      return new Map(userIds.map((u, i) => [u, lists[i] ?? []]));
    },
    async putEdge(edge, ttlMs) {
      await redis.hset(EDGES_KEY, edge.edgeId, encode(EdgeSchema, edge, now() + ttlMs));
    },
    async listEdges() {
      return liveEntries(redis, EDGES_KEY, (_field, raw) => decode(EdgeSchema, raw), now());
    },
    async health() {
      await redis.ping();
    },
    async close() {
      redis.disconnect();
    },
  };
}
