// Redis connector (ioredis): connected before use, commands auto-pipelined.
import { Redis } from "ioredis";

export type { Redis };

export async function openRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3, enableAutoPipelining: true, connectTimeout: 5_000 });
  redis.on("error", () => undefined); // reported by the failing command; ioredis reconnects
  await redis.connect();
  await redis.ping();
  return redis;
}
