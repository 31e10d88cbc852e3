// Redis driver. Per user a sorted set of device-on-edge -> last heard; one sorted set of user ->
// last heard through any device (so the sweep finds users gone quiet without scanning everyone); a
// hash of last seen; a set of users who hide last seen. Subscriptions: per watched user a set of
// watching devices, per viewer the devices that watch and per viewing device the users it watches
// (to drop them all when the viewer goes offline). Each batch is one Lua script call, atomic, so
// transitions are reported once even with several presence processes. (Scripts build per-user key
// names themselves: fine for a standalone or sentinel Redis, not for Redis Cluster.)
import type { Redis } from "ioredis";
import type { UserPresence } from "../domain/visibility.js";
import type { PresenceStore, Watcher, WentOffline } from "./port.js";

/** Key names under a prefix ("chat:presence" by default; tests use their own, so their clock cannot sweep anyone else's users). */
function keysOf(P: string) {
  return {
    heard: `${P}:heard`,
    lastSeen: `${P}:lastseen`,
    hidden: `${P}:hide-last-seen`,
    devices: `${P}:devices:{`,
    watchers: `${P}:watchers:{`,
    /** The devices of a viewer that watch someone. */
    viewerDevices: (viewerId: string) => `${P}:watching:{${viewerId}}`,
    /** The users one device of a viewer watches. */
    watching: (viewerId: string, deviceId: string) => `${P}:watching:{${viewerId}}:${deviceId}`,
  };
}
const member = (w: Watcher) => `${w.viewerId}\n${w.deviceId}`;

// KEYS: heard. ARGV: now, ttl, devices prefix, edge id, then user, device pairs. Returns users that came online.
const HEARTBEAT = `
local now, ttl, prefix, edge = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local online = {}
for i = 5, #ARGV, 2 do
  local user, device = ARGV[i], ARGV[i + 1]
  local old = tonumber(redis.call('ZSCORE', KEYS[1], user) or '0')
  local key = prefix .. user .. '}'
  redis.call('ZADD', key, 'GT', now, device .. ' ' .. edge)
  redis.call('PEXPIRE', key, ttl + 86400000)
  redis.call('ZADD', KEYS[1], 'GT', now, user)
  if old <= now - ttl then online[#online + 1] = user end
end
return online`;

// KEYS: heard, lastSeen. ARGV: now, ttl, devices prefix, edge id, then user, device, last active
// triples. Returns user, last seen pairs of users left with no live device.
const DISCONNECT = `
local now, ttl, prefix, edge = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local out = {}
for i = 5, #ARGV, 3 do
  local user, device, active = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local key = prefix .. user .. '}'
  if redis.call('ZREM', key, device .. ' ' .. edge) == 1 then
    local top = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
    if top[2] == nil or tonumber(top[2]) <= now - ttl then
      redis.call('DEL', key)
      if redis.call('ZREM', KEYS[1], user) == 1 then
        local seen = now
        if active > 0 then seen = active end
        redis.call('HSET', KEYS[2], user, seen)
        out[#out + 1] = user
        out[#out + 1] = seen
      end
    else
      redis.call('ZADD', KEYS[1], top[2], user)
    end
  end
end
return out`;

// KEYS: heard, lastSeen. ARGV: now, ttl, devices prefix. Claims users not heard from within the
// TTL; re-arms those with a live device left.
const SWEEP = `
local now, ttl, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl, 'WITHSCORES', 'LIMIT', 0, 1000)
for i = 1, #due, 2 do
  local user = due[i]
  local key = prefix .. user .. '}'
  local top = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
  if top[2] ~= nil and tonumber(top[2]) > now - ttl then
    redis.call('ZADD', KEYS[1], top[2], user)
  else
    local seen = top[2] or due[i + 1]
    redis.call('ZREM', KEYS[1], user)
    redis.call('DEL', key)
    redis.call('HSET', KEYS[2], user, seen)
    out[#out + 1] = user
    out[#out + 1] = seen
  end
end
return out`;

// KEYS: the device's watching set, the viewer's devices. ARGV: limit, watcher member, device id,
// watchers prefix, then users. Returns 0 (nothing stored) past the limit.
const WATCH = `
local limit = tonumber(ARGV[1])
local new = 0
for i = 5, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then new = new + 1 end
end
if redis.call('SCARD', KEYS[1]) + new > limit then return 0 end
for i = 5, #ARGV do
  redis.call('SADD', KEYS[1], ARGV[i])
  redis.call('SADD', ARGV[4] .. ARGV[i] .. '}', ARGV[2])
end
redis.call('SADD', KEYS[2], ARGV[3])
return 1`;

// KEYS: the device's watching set. ARGV: watcher member, watchers prefix, then users.
const UNWATCH = `
for i = 3, #ARGV do
  redis.call('SREM', KEYS[1], ARGV[i])
  redis.call('SREM', ARGV[2] .. ARGV[i] .. '}', ARGV[1])
end
return 1`;

// KEYS: the viewer's devices, heard. ARGV: viewer, watching prefix of the viewer, watchers prefix,
// now, ttl. A viewer live again keeps their subscriptions.
const DROP = `
if tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0') > tonumber(ARGV[4]) - tonumber(ARGV[5]) then return 0 end
for _, device in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[2] .. device
  for _, user in ipairs(redis.call('SMEMBERS', key)) do
    redis.call('SREM', ARGV[3] .. user .. '}', ARGV[1] .. '\\n' .. device)
  end
  redis.call('DEL', key)
end
redis.call('DEL', KEYS[1])
return 1`;

function pairs(raw: (string | number)[]): WentOffline[] {
  const out: WentOffline[] = [];
  for (let i = 0; i < raw.length; i += 2) out.push({ userId: String(raw[i]), lastSeenMs: Number(raw[i + 1]) });
  return out;
}

export function createRedisPresence(redis: Redis, opts: { ttlMs: number; keyPrefix?: string }): PresenceStore {
  const ttl = opts.ttlMs;
  const KEYS = keysOf(opts.keyPrefix ?? "chat:presence");
  return {
    async heartbeat(edgeId, list, nowMs) {
      if (list.length === 0) return [];
      return (await redis.eval(HEARTBEAT, 1, KEYS.heard, nowMs, ttl, KEYS.devices, edgeId, ...list.flatMap((d) => [d.userId, d.deviceId]))) as string[];
    },
    async disconnect(edgeId, list, nowMs) {
      if (list.length === 0) return [];
      const args = list.flatMap((d) => [d.userId, d.deviceId, d.lastActiveMs ?? 0]);
      return pairs((await redis.eval(DISCONNECT, 2, KEYS.heard, KEYS.lastSeen, nowMs, ttl, KEYS.devices, edgeId, ...args)) as string[]);
    },
    async sweep(nowMs) {
      return pairs((await redis.eval(SWEEP, 2, KEYS.heard, KEYS.lastSeen, nowMs, ttl, KEYS.devices)) as string[]);
    },
    async get(userIds, nowMs) {
      const pipeline = redis.pipeline();
      for (const u of userIds) pipeline.zscore(KEYS.heard, u).hget(KEYS.lastSeen, u);
      const results = (await pipeline.exec()) ?? [];
      const out = new Map<string, UserPresence>();
      userIds.forEach((userId, i) => {
        const heard = Number(results[2 * i]?.[1] ?? 0);
        const seen = results[2 * i + 1]?.[1];
        const online = heard > nowMs - ttl;
        const lastSeenMs = heard > 0 ? heard : seen === null || seen === undefined ? undefined : Number(seen);
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
    async watch(watcher, userIds, limit) {
      const users = [...new Set(userIds)];
      const keys = [KEYS.watching(watcher.viewerId, watcher.deviceId), KEYS.viewerDevices(watcher.viewerId)];
      return (await redis.eval(WATCH, 2, ...keys, limit, member(watcher), watcher.deviceId, KEYS.watchers, ...users)) === 1;
    },
    async unwatch(watcher, userIds) {
      await redis.eval(UNWATCH, 1, KEYS.watching(watcher.viewerId, watcher.deviceId), member(watcher), KEYS.watchers, ...userIds);
    },
    async dropWatchers(viewerIds, nowMs) {
      if (viewerIds.length === 0) return;
      const pipeline = redis.pipeline();
      for (const v of viewerIds) pipeline.eval(DROP, 2, KEYS.viewerDevices(v), KEYS.heard, v, `${KEYS.viewerDevices(v)}:`, KEYS.watchers, nowMs, ttl);
      await pipeline.exec();
    },
    async watchers(userIds) {
      const pipeline = redis.pipeline();
      for (const u of userIds) pipeline.smembers(`${KEYS.watchers}${u}}`);
      const results = (await pipeline.exec()) ?? [];
      const out = new Map<string, Watcher[]>();
      userIds.forEach((userId, i) => {
        const members = (results[i]?.[1] ?? []) as string[];
        if (members.length === 0) return;
        out.set(
          userId,
          members.map((m) => {
            const cut = m.indexOf("\n");
            return { viewerId: m.slice(0, cut), deviceId: m.slice(cut + 1) };
          }),
        );
      });
      return out;
    },
    async health() {
      await redis.ping();
    },
    async close() {
      redis.disconnect();
    },
  };
}
