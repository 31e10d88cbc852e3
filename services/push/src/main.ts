// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
// (The PushRequested consumer and the provider clients join here with issue #6.)
import { commonSettings, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { openConfiguredSql, sqlSettings } from "../../../packages/runtime/src/drivers.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { serve, type ServiceMain, type StoreMigrate } from "../../../packages/runtime/src/service.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { createPushHandler } from "./handler.js";
import { routes, services } from "./routes.js";
import { migrations } from "./store/migrations.js";
import { createSqlPushStore } from "./store/sql.js";

export const DEFAULT_PORT = 9106;

const Config = z.object({
  ...commonSettings,
  ...sqlSettings,
  PORT: port(DEFAULT_PORT),
  MAX_TARGETS_PER_USER: int(10, 1),
});

/** The push store's migrations alone (`chat migrate`); main applies the same ones at startup. */
export const migrate: StoreMigrate = async (env) => {
  const sql = await openConfiguredSql(loadConfig(z.object({ ...commonSettings, ...sqlSettings }), env), "push");
  try {
    return await migrateSql(sql, "push", migrations);
  } finally {
    await sql.close();
  }
};

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("push");
  const sql = await openConfiguredSql(config, "push");
  await migrateSql(sql, "push", migrations);
  const store = createSqlPushStore(sql);
  return serve({
    name: "push",
    config,
    services,
    routes: routes(createPushHandler({ store, maxTargetsPerUser: config.MAX_TARGETS_PER_USER })),
    logger,
    closers: [() => store.close()],
  });
};
