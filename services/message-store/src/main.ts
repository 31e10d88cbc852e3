// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { migrateCql } from "../../../packages/runtime/src/cassandra.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import { address, commonSettings, driver, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { busSettings, cassandraSettings, openConfiguredBus, openConfiguredCassandra, openConfiguredSql } from "../../../packages/runtime/src/drivers.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { consumeMembershipChanges } from "./events/consume.js";
import { createMessageStoreHandler, DEFAULT_INBOX_FANOUT_MAX_MEMBERS } from "./handler.js";
import { routes, services } from "./routes.js";
import { createCassandraMessageStore } from "./store/cassandra.js";
import { createEmbeddedMessageStore } from "./store/embedded.js";
import { cqlMigrations, sqlMigrations } from "./store/migrations.js";
import type { MessageStore } from "./store/port.js";

export const DEFAULT_PORT = 9102;

const Config = z.object({
  ...commonSettings,
  ...busSettings,
  ...cassandraSettings,
  PORT: port(DEFAULT_PORT),
  STORE_DRIVER: driver(["embedded", "cassandra"], "embedded"),
  GROUP_SERVICE_ADDR: address(),
  INBOX_FANOUT_MAX_MEMBERS: int(DEFAULT_INBOX_FANOUT_MAX_MEMBERS, 2),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("message-store");
  let store: MessageStore;
  switch (config.STORE_DRIVER) {
    case "embedded": {
      const sql = await openConfiguredSql({ ...config, STORE_DRIVER: "embedded" }, "message-store");
      await migrateSql(sql, "message-store", sqlMigrations);
      store = createEmbeddedMessageStore(sql);
      break;
    }
    case "cassandra": {
      const session = await openConfiguredCassandra(config);
      await migrateCql(session, "message-store", cqlMigrations);
      store = createCassandraMessageStore(session.client, { logger });
      break;
    }
  }
  await store.health();
  const bus = await openConfiguredBus(config, "message-store", logger);
  const handler = createMessageStoreHandler({ store, bus, group: peerClient(GroupService, config.GROUP_SERVICE_ADDR), inboxFanoutMaxMembers: config.INBOX_FANOUT_MAX_MEMBERS });
  const membershipChanges = await consumeMembershipChanges(bus, handler);
  return serve({
    name: "message-store",
    config,
    services,
    routes: routes(handler),
    logger,
    readMaxBytes: 1024 * 1024,
    closers: [() => store.close(), () => bus.close(), () => membershipChanges.stop()],
  });
};
