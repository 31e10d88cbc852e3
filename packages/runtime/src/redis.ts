// Redis connector (ioredis): connected before it is returned, commands auto-pipelined, a command
// fails after a few reconnection attempts instead of queueing forever.
import { Redis } from "ioredis";
import { redactUrl, z } from "./config.js";

export type { Redis };

/** Settings of services with a Redis driver (connection, presence). */
export const redisSettings = {
  REDIS_URL: z.string().optional(),
  /** Prefix of every key, so several meshes can share one Redis (like BUS_NAMESPACE on Kafka). */
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[\w.:-]{1,64}$/, "1-64 characters of [A-Za-z0-9_.:-]")
    .default("chat"),
};

/** The ioredis client, plus a health check. */
export type RedisClient = Redis & { health(): Promise<void> };

export async function openRedis(url: string): Promise<RedisClient> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3, enableAutoPipelining: true, connectTimeout: 5_000 });
  let lastError: Error | undefined;
  // Reported by the failing command; ioredis reconnects by itself.
  redis.on("error", (err: Error) => (lastError = err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect(); // no reconnection loop left behind
    const reason = lastError ?? (err instanceof Error ? err : new Error(String(err)));
    throw new Error(`Redis at ${redactUrl(url, "REDIS_URL")} is not reachable: ${reason.message}`, { cause: reason });
  }
  return Object.assign(redis, {
    async health() {
      await redis.ping();
    },
  });
}
