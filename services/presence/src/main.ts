// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { commonSettings, driver, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { openRedis } from "../../../packages/runtime/src/redis.js";
import { required, serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { createPresence } from "./handler.js";
import { routes, services } from "./routes.js";
import { createEmbeddedPresence } from "./store/embedded.js";
import type { PresenceStore } from "./store/port.js";
import { createRedisPresence } from "./store/redis.js";

export const DEFAULT_PORT = 9104;

const Config = z.object({
  ...commonSettings,
  PORT: port(DEFAULT_PORT),
  STORE_DRIVER: driver(["embedded", "redis"], "embedded"),
  REDIS_URL: z.string().optional(),
  PRESENCE_TTL_MS: int(30_000, 1000),
  PRESENCE_SWEEP_MS: int(1_000, 50),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("presence");
  let store: PresenceStore;
  switch (config.STORE_DRIVER) {
    case "embedded":
      store = createEmbeddedPresence();
      break;
    case "redis":
      store = createRedisPresence(await openRedis(required(config.REDIS_URL, "REDIS_URL", "STORE_DRIVER=redis")));
      break;
  }
  await store.health();
  const presence = createPresence({ store, ttlMs: config.PRESENCE_TTL_MS, sweepIntervalMs: config.PRESENCE_SWEEP_MS, logger });
  return serve({
    name: "presence",
    config,
    services,
    routes: routes(presence.handler),
    logger,
    closers: [() => store.close(), () => presence.stop()],
  });
};
