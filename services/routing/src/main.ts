// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { commonSettings, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { busSettings, openConfiguredBus } from "../../../packages/runtime/src/drivers.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { createRoutingHandler } from "./handler.js";
import { routes, services } from "./routes.js";

export const DEFAULT_PORT = 9103;

const Config = z.object({
  ...commonSettings,
  ...busSettings,
  PORT: port(DEFAULT_PORT),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("routing");
  const bus = await openConfiguredBus(config, "routing", logger);
  return serve({
    name: "routing",
    config,
    services,
    routes: routes(createRoutingHandler({ bus })),
    logger,
    closers: [() => bus.close()],
  });
};
