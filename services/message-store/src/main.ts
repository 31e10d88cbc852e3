// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { hostname } from "node:os";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import { migrateCql } from "../../../packages/runtime/src/cassandra.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import { address, commonSettings, driver, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { busSettings, cassandraSettings, openConfiguredBus, openConfiguredCassandra, openConfiguredSql } from "../../../packages/runtime/src/drivers.js";
import { createLogger, type Logger } from "../../../packages/runtime/src/log.js";
import { serve, type ServiceMain, type StoreMigrate } from "../../../packages/runtime/src/service.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { MESSAGE_STORE_READ_MAX_BYTES } from "../../../packages/runtime/src/append-many.js";
import { consumeMembershipChanges } from "./events/consume.js";
import { createMessageStoreHandler, DEFAULT_INBOX_FANOUT_MAX_MEMBERS } from "./handler.js";
import { routes, services } from "./routes.js";
import { createCassandraMessageStore, DEFAULT_WRITE_LINGER_MS } from "./store/cassandra.js";
import { createEmbeddedMessageStore } from "./store/embedded.js";
import { createSeqLeases, DEFAULT_LEASE_MS, leaseTiming, type SeqLeases } from "./store/leases.js";
import { cqlMigrations, sqlMigrations } from "./store/migrations.js";
import type { MessageStore } from "./store/port.js";

export const DEFAULT_PORT = 9102;

/** What opening the store reads (also all `chat migrate` reads for this service). */
const StoreConfig = z.object({
  ...commonSettings,
  ...cassandraSettings,
  STORE_DRIVER: driver(["embedded", "cassandra"], "embedded"),
  // This replica's name in the seq leases (store/leases.ts): a restart under the same name takes
  // its shards back at once, so two live replicas must never share one (a pod's name does).
  INSTANCE_NAME: z.string().min(1).max(128).default(`${hostname()}-${process.pid}`),
  // How long a seq lease lasts (margin 40% of it, renewed every 20%): a replica that dies without
  // giving its shards up (kill -9, a lost node) holds them this long plus the margin.
  SEQ_LEASE_MS: int(DEFAULT_LEASE_MS, 1000),
  // How long Cassandra writes wait to go together in one batch, ms (0: none; store/cassandra.ts).
  CASSANDRA_WRITE_LINGER_MS: int(DEFAULT_WRITE_LINGER_MS).pipe(z.number().max(1_000)),
});

const Config = z.object({
  ...StoreConfig.shape,
  ...busSettings,
  PORT: port(DEFAULT_PORT),
  GROUP_SERVICE_ADDR: address(),
  INBOX_FANOUT_MAX_MEMBERS: int(DEFAULT_INBOX_FANOUT_MAX_MEMBERS, 2),
  /** host:port where the other replicas reach this one (default: the address it listens on). */
  ADVERTISE_ADDR: address().optional(),
});

/**
 * The configured store with its migrations applied (the ids this call applied), and for the
 * Cassandra driver its seq leases, not yet started.
 */
async function openStore(config: z.infer<typeof StoreConfig>, logger: Logger): Promise<{ store: MessageStore; applied: string[]; leases?: SeqLeases }> {
  switch (config.STORE_DRIVER) {
    case "embedded": {
      const sql = await openConfiguredSql({ ...config, STORE_DRIVER: "embedded" }, "message-store");
      const applied = await migrateSql(sql, "message-store", sqlMigrations);
      return { store: createEmbeddedMessageStore(sql), applied };
    }
    case "cassandra": {
      const session = await openConfiguredCassandra(config);
      const applied = await migrateCql(session, "message-store", cqlMigrations);
      const leases = createSeqLeases(session.client, { instance: config.INSTANCE_NAME, timing: leaseTiming(config.SEQ_LEASE_MS), logger });
      return { store: createCassandraMessageStore(session.client, { leases, logger, writeLingerMs: config.CASSANDRA_WRITE_LINGER_MS }), applied, leases };
    }
  }
}

/** The message store's migrations alone (`chat migrate`); main applies the same ones at startup. */
export const migrate: StoreMigrate = async (env) => {
  const { store, applied } = await openStore(loadConfig(StoreConfig, env), createLogger("message-store"));
  await store.close();
  return applied;
};

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("message-store");
  const { store, leases } = await openStore(config, logger);
  await store.health();
  const bus = await openConfiguredBus(config, "message-store", logger);
  const handler = createMessageStoreHandler({
    store,
    bus,
    group: peerClient(GroupService, config.GROUP_SERVICE_ADDR),
    replica: (addr) => peerClient(MessageStoreService, addr),
    inboxFanoutMaxMembers: config.INBOX_FANOUT_MAX_MEMBERS,
  });
  const membershipChanges = await consumeMembershipChanges(bus, handler);
  const running = await serve({
    name: "message-store",
    config,
    services,
    routes: routes(handler),
    logger,
    readMaxBytes: MESSAGE_STORE_READ_MAX_BYTES,
    closers: [() => store.close(), () => bus.close(), () => membershipChanges.stop()],
  });
  // Up once it knows which conversations it writes (until then an append is refused: retry).
  await leases?.start(config.ADVERTISE_ADDR ?? running.address);
  return running;
};
