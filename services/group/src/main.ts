// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { commonSettings, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { openConfiguredSql, sqlSettings } from "../../../packages/runtime/src/drivers.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { createGroupHandler } from "./handler.js";
import { routes, services } from "./routes.js";
import { migrations } from "./store/migrations.js";
import { createSqlGroupStore } from "./store/sql.js";

export const DEFAULT_PORT = 9105;

const Config = z.object({
  ...commonSettings,
  ...sqlSettings,
  PORT: port(DEFAULT_PORT),
  MAX_GROUP_MEMBERS: int(1024, 2),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("group");
  const sql = await openConfiguredSql(config, "group");
  await migrateSql(sql, "group", migrations);
  const store = createSqlGroupStore(sql);
  return serve({
    name: "group",
    config,
    services,
    routes: routes(createGroupHandler({ store, maxGroupMembers: config.MAX_GROUP_MEMBERS })),
    logger,
    closers: [() => store.close()],
  });
};
