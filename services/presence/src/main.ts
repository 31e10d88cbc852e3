// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { ConnectionService } from "../../../gen/chat/connection/v1/connection_pb.js";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import { address, commonSettings, driver, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { EdgeDeliverer } from "../../../packages/runtime/src/edge-delivery.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { openRedis, redisSettings } from "../../../packages/runtime/src/redis.js";
import { required, serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { createPresence } from "./handler.js";
import { Notifier } from "./notifier.js";
import { routes, services } from "./routes.js";
import { createEmbeddedPresence } from "./store/embedded.js";
import type { PresenceStore } from "./store/port.js";
import { createRedisPresence } from "./store/redis.js";

export const DEFAULT_PORT = 9104;

const Config = z.object({
  ...commonSettings,
  PORT: port(DEFAULT_PORT),
  STORE_DRIVER: driver(["embedded", "redis"], "embedded"),
  ...redisSettings,
  CONNECTION_SERVICE_ADDR: address(),
  GROUP_SERVICE_ADDR: address(),
  /** A device not heard from for this long is gone; a user with no device left is offline. */
  PRESENCE_TTL_MS: int(30_000, 1000),
  PRESENCE_SWEEP_MS: int(1_000, 50),
  PRESENCE_MAX_WATCHES: int(5_000, 1),
  /** How long a typing indicator lasts without a refresh. */
  TYPING_TTL_MS: int(6_000, 500),
  TYPING_PER_SECOND: int(5, 1),
  TYPING_BURST: int(10, 1),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("presence");
  const ttlMs = config.PRESENCE_TTL_MS;
  let store: PresenceStore;
  switch (config.STORE_DRIVER) {
    case "embedded":
      store = createEmbeddedPresence({ ttlMs });
      break;
    case "redis":
      store = createRedisPresence(await openRedis(required(config.REDIS_URL, "REDIS_URL", "STORE_DRIVER=redis")), { ttlMs, keyPrefix: `${config.REDIS_KEY_PREFIX}:presence` });
      break;
  }
  await store.health();
  const connection = peerClient(ConnectionService, config.CONNECTION_SERVICE_ADDR);
  const presence = createPresence({
    store,
    group: peerClient(GroupService, config.GROUP_SERVICE_ADDR),
    notifier: new Notifier({ store, connection, deliverer: new EdgeDeliverer({ connection, logger }), logger }),
    ttlMs,
    sweepIntervalMs: config.PRESENCE_SWEEP_MS,
    maxWatchesPerDevice: config.PRESENCE_MAX_WATCHES,
    typing: { ttlMs: config.TYPING_TTL_MS, ratePerSecond: config.TYPING_PER_SECOND, burst: config.TYPING_BURST },
    logger,
  });
  return serve({
    name: "presence",
    config,
    services,
    routes: routes(presence.handler),
    logger,
    closers: [() => store.close(), () => presence.stop()],
  });
};
