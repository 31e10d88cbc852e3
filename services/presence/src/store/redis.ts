// Redis driver. Per user a sorted set of device -> deadline; one sorted set of user -> latest
// deadline (so the sweep finds expired users without scanning everyone); a hash of last seen; a
// set of users who hide last seen. Each batch is one Lua script call, atomic, so transitions are
// reported once even with several presence processes. (Scripts name per-user keys themselves:
// fine for a standalone or sentinel Redis, not for Redis Cluster.)
import type { Redis } from "ioredis";
import type { UserPresence } from "../domain/visibility.js";
import type { PresenceStore, WentOffline } from "./port.js";

const P = "chat:presence";
const KEYS = { expiry: `${P}:expiry`, lastSeen: `${P}:lastseen`, hidden: `${P}:hide-last-seen` };

// ARGV: nowMs, expiresAtMs, then userId, deviceId pairs. Returns users that came online.
const HEARTBEAT = `
local now, exp = tonumber(ARGV[1]), tonumber(ARGV[2])
local online = {}
for i = 3, #ARGV, 2 do
  local user, device = ARGV[i], ARGV[i + 1]
  local old = tonumber(redis.call('ZSCORE', KEYS[1], user) or '0')
  redis.call('ZADD', KEYS[2] .. user .. '}', 'GT', exp, device)
  redis.call('PEXPIRE', KEYS[2] .. user .. '}', exp - now + 86400000)
  redis.call('ZADD', KEYS[1], 'GT', exp, user)
  if old <= now then online[#online + 1] = user end
end
return online`;

// ARGV: nowMs, then userId, deviceId pairs. Returns users whose last live device this was.
const DISCONNECT = `
local now = tonumber(ARGV[1])
local offline = {}
for i = 2, #ARGV, 2 do
  local user, device = ARGV[i], ARGV[i + 1]
  local key = KEYS[2] .. user .. '}'
  if redis.call('ZREM', key, device) == 1 and redis.call('ZCOUNT', key, '(' .. now, '+inf') == 0 then
    redis.call('DEL', key)
    if redis.call('ZREM', KEYS[1], user) == 1 then
      redis.call('HSET', KEYS[3], user, now)
      offline[#offline + 1] = user
    end
  end
end
return offline`;

// ARGV: nowMs. Claims users whose latest deadline passed; re-arms those with a live device left.
const SWEEP = `
local now = tonumber(ARGV[1])
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1000)
for i = 1, #due, 2 do
  local user = due[i]
  local key = KEYS[2] .. user .. '}'
  local top = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
  if top[2] ~= nil and tonumber(top[2]) > now then
    redis.call('ZADD', KEYS[1], top[2], user)
  else
    local seen = top[2] or due[i + 1]
    redis.call('ZREM', KEYS[1], user)
    redis.call('DEL', key)
    redis.call('HSET', KEYS[3], user, seen)
    out[#out + 1] = user
    out[#out + 1] = seen
  end
end
return out`;

const devicesPrefix = `${P}:devices:{`;

export function createRedisPresence(redis: Redis): PresenceStore {
  const flat = (list: { userId: string; deviceId: string }[]) => list.flatMap((d) => [d.userId, d.deviceId]);
  return {
    async heartbeat(list, expiresAtMs, nowMs) {
      if (list.length === 0) return [];
      return (await redis.eval(HEARTBEAT, 2, KEYS.expiry, devicesPrefix, nowMs, expiresAtMs, ...flat(list))) as string[];
    },
    async disconnect(list, nowMs) {
      if (list.length === 0) return [];
      const users = (await redis.eval(DISCONNECT, 3, KEYS.expiry, devicesPrefix, KEYS.lastSeen, nowMs, ...flat(list))) as string[];
      return users.map((userId) => ({ userId, lastSeenMs: nowMs }));
    },
    async sweep(nowMs) {
      const raw = (await redis.eval(SWEEP, 3, KEYS.expiry, devicesPrefix, KEYS.lastSeen, nowMs)) as string[];
      const out: WentOffline[] = [];
      for (let i = 0; i < raw.length; i += 2) out.push({ userId: raw[i], lastSeenMs: Number(raw[i + 1]) });
      return out;
    },
    async get(userIds, nowMs) {
      const pipeline = redis.pipeline();
      for (const u of userIds) pipeline.zscore(KEYS.expiry, u).hget(KEYS.lastSeen, u);
      const results = (await pipeline.exec()) ?? [];
      const out = new Map<string, UserPresence>();
      userIds.forEach((userId, i) => {
        const deadline = Number(results[2 * i]?.[1] ?? 0);
        const seen = results[2 * i + 1]?.[1];
        const online = deadline > nowMs;
        const lastSeenMs = deadline > 0 ? deadline : seen === null || seen === undefined ? undefined : Number(seen);
        out.set(userId, online || lastSeenMs === undefined ? { online } : { online, lastSeenMs });
      });
      return out;
    },
    async setShowLastSeen(userId, show) {
      if (show) await redis.srem(KEYS.hidden, userId);
      else await redis.sadd(KEYS.hidden, userId);
    },
    async showsLastSeen(userIds) {
      if (userIds.length === 0) return new Set();
      const hidden = await redis.smismember(KEYS.hidden, ...userIds);
      return new Set(userIds.filter((_, i) => hidden[i] !== 1));
    },
    async health() {
      await redis.ping();
    },
    async close() {
      redis.disconnect();
    },
  };
}
