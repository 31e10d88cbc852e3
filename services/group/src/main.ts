// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import { address, commonSettings, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { busSettings, openConfiguredBus, openConfiguredSql, sqlSettings, sqlStoreMigrate } from "../../../packages/runtime/src/drivers.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { serve, type ServiceMain, type StoreMigrate } from "../../../packages/runtime/src/service.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { createGroupHandler, STALE_CHANGE_MS } from "./handler.js";
import { routes, services } from "./routes.js";
import { migrations } from "./store/migrations.js";
import { createSqlGroupStore } from "./store/sql.js";

export const DEFAULT_PORT = 9105;

const Config = z.object({
  ...commonSettings,
  ...sqlSettings,
  ...busSettings,
  PORT: port(DEFAULT_PORT),
  MAX_GROUP_MEMBERS: int(1024, 2),
  MESSAGE_STORE_SERVICE_ADDR: address(),
});

/** The group store's migrations alone (`chat migrate`); main applies the same ones at startup. */
export const migrate: StoreMigrate = sqlStoreMigrate("group", migrations);

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("group");
  const sql = await openConfiguredSql(config, "group");
  await migrateSql(sql, "group", migrations);
  const store = createSqlGroupStore(sql);
  const bus = await openConfiguredBus(config, "group", logger);
  const handler = createGroupHandler({
    store,
    bus,
    messages: peerClient(MessageStoreService, config.MESSAGE_STORE_SERVICE_ADDR),
    logger,
    maxGroupMembers: config.MAX_GROUP_MEMBERS,
  });
  // Changes cut off by a crash or an ambiguous failure are finished in the background.
  const finisher = setInterval(() => {
    handler.finishPending().catch((err: unknown) => logger.warn({ err }, "finishing pending group changes failed; retrying later"));
  }, STALE_CHANGE_MS / 2);
  return serve({
    name: "group",
    config,
    services,
    routes: routes(handler),
    logger,
    closers: [() => store.close(), () => bus.close(), () => clearInterval(finisher)],
  });
};
