// The Redis connector against the real server (REDIS_URL, the local infrastructure's
// redis://127.0.0.1:16379 by default; fails, naming it, when it is not up).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { openRedis, type RedisClient } from "../src/redis.js";

const REDIS_URL = process.env["REDIS_URL"] ?? "redis://127.0.0.1:16379";

describe("redis", () => {
  const prefix = `runtime-test:${randomBytes(4).toString("hex")}:`;
  let redis: RedisClient;
  before(async () => {
    redis = await openRedis(REDIS_URL);
  });
  after(async () => {
    if (redis === undefined) return;
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("connects and answers its health check", async () => {
    assert.equal(redis.status, "ready");
    await redis.health();
  });

  it("pipelines concurrent commands and keeps their results apart", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `${prefix}${i}`);
    await Promise.all(keys.map((k, i) => redis.set(k, String(i), "EX", 60)));
    assert.deepEqual(await Promise.all(keys.map((k) => redis.get(k))), keys.map((_, i) => String(i)));
    assert.equal(await redis.incr(`${prefix}counter`), 1);
  });

  it("names the server it cannot reach, without its password, and leaves no reconnection behind", async () => {
    await assert.rejects(openRedis("redis://:secret@127.0.0.1:1"), /^Error: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 is not reachable: .*ECONNREFUSED/);
  });
});
