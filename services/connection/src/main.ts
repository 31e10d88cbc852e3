// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { commonSettings, driver, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { openRedis, redisSettings } from "../../../packages/runtime/src/redis.js";
import { required, serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { createConnectionHandler } from "./handler.js";
import { routes, services } from "./routes.js";
import { createEmbeddedRegistry } from "./store/embedded.js";
import type { RegistryStore } from "./store/port.js";
import { createRedisRegistry } from "./store/redis.js";

export const DEFAULT_PORT = 9101;

const Config = z.object({
  ...commonSettings,
  PORT: port(DEFAULT_PORT),
  STORE_DRIVER: driver(["embedded", "redis"], "embedded"),
  ...redisSettings,
  SESSION_TTL_MS: int(30_000, 1000),
  EDGE_TTL_MS: int(15_000, 1000),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("connection");
  let store: RegistryStore;
  switch (config.STORE_DRIVER) {
    case "embedded":
      store = createEmbeddedRegistry();
      break;
    case "redis":
      store = createRedisRegistry(await openRedis(required(config.REDIS_URL, "REDIS_URL", "STORE_DRIVER=redis")), { keyPrefix: `${config.REDIS_KEY_PREFIX}:conn` });
      break;
  }
  await store.health();
  const handler = createConnectionHandler({ store, sessionTtlMs: config.SESSION_TTL_MS, edgeTtlMs: config.EDGE_TTL_MS });
  return serve({
    name: "connection",
    config,
    services,
    routes: routes(handler),
    logger,
    closers: [() => store.close()],
  });
};
