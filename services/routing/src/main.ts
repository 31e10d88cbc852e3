// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { ConnectionService } from "../../../gen/chat/connection/v1/connection_pb.js";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import { address, commonSettings, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { busSettings, openConfiguredBus } from "../../../packages/runtime/src/drivers.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { consume } from "./events/consume.js";
import { createRoutingHandler } from "./handler.js";
import { Router } from "./router.js";
import { BY_USER_MAX_EDGES } from "./domain/fanout.js";
import { routes, services } from "./routes.js";

export const DEFAULT_PORT = 9103;

const Config = z.object({
  ...commonSettings,
  ...busSettings,
  PORT: port(DEFAULT_PORT),
  GROUP_SERVICE_ADDR: address(),
  CONNECTION_SERVICE_ADDR: address(),
  /** Member lists are cached this long; membership changes (issue #4) drop them at once. */
  MEMBER_CACHE_MS: int(300_000, 0),
  /** With this many live edges or fewer, events go to every live edge by user, with no session lookup (domain/fanout.ts); 0: look sessions up for every audience under 64. */
  BY_USER_MAX_EDGES: int(BY_USER_MAX_EDGES, 0),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("routing");
  const bus = await openConfiguredBus(config, "routing", logger);
  const router = new Router({
    group: peerClient(GroupService, config.GROUP_SERVICE_ADDR),
    connection: peerClient(ConnectionService, config.CONNECTION_SERVICE_ADDR),
    bus,
    logger,
    memberCacheMs: config.MEMBER_CACHE_MS,
    byUserMaxEdges: config.BY_USER_MAX_EDGES,
  });
  const subscription = await consume(bus, router);
  return serve({
    name: "routing",
    config,
    services,
    routes: routes(createRoutingHandler({ bus, subscription, stats: router.stats })),
    logger,
    closers: [() => bus.close(), () => subscription.stop()],
  });
};
