// Wiring only: config -> telemetry -> drivers -> server. The one file that picks drivers.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { ConnectionService } from "../../../gen/chat/connection/v1/connection_pb.js";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import { address, commonSettings, ConfigError, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { busSettings, openConfiguredBus, openConfiguredSql, sqlSettings, sqlStoreMigrate } from "../../../packages/runtime/src/drivers.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { serve, type ServiceMain, type StoreMigrate } from "../../../packages/runtime/src/service.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { Deliverer } from "./deliverer.js";
import { consume } from "./events/consume.js";
import { createPushHandler } from "./handler.js";
import { openProviders, providerSettings } from "./providers/index.js";
import { routes, services } from "./routes.js";
import { migrations } from "./store/migrations.js";
import { createSqlPushStore } from "./store/sql.js";

export const DEFAULT_PORT = 9106;

const Config = z
  .object({
    ...commonSettings,
    ...sqlSettings,
    ...busSettings,
    ...providerSettings,
    PORT: port(DEFAULT_PORT),
    MAX_TARGETS_PER_USER: int(10, 1),
    CONNECTION_SERVICE_ADDR: address(),
    GROUP_SERVICE_ADDR: address(),
    MESSAGE_STORE_SERVICE_ADDR: address(),
    /** One provider request's bound. */
    PUSH_SEND_TIMEOUT_MS: int(10_000, 100),
    /** Attempts per notification on transient errors (429, 5xx, network), the first included. */
    PUSH_MAX_ATTEMPTS: int(4, 1),
    PUSH_RETRY_BASE_MS: int(500, 1),
    /** The longest wait between attempts; a longer Retry-After dead-letters instead of holding the partition. */
    PUSH_RETRY_MAX_MS: int(4_000, 1),
    /** A sent-record claimed longer ago than this by a sender that never finished is taken over. */
    PUSH_CLAIM_LEASE_MS: int(30_000, 1),
    /** How long sent-records are kept (no notification is sent twice within it). */
    PUSH_DEDUP_WINDOW_MS: int(86_400_000, 60_000),
    /** How long providers keep an undelivered notification. */
    PUSH_TTL_SECONDS: int(86_400, 0),
    /** Events of one batch handled at once. */
    PUSH_CONCURRENCY: int(16, 1),
  })
  .refine((c) => c.PUSH_CLAIM_LEASE_MS > c.PUSH_SEND_TIMEOUT_MS, {
    path: ["PUSH_CLAIM_LEASE_MS"],
    message: "must be longer than PUSH_SEND_TIMEOUT_MS (a live sender's claim must not be taken over)",
  });

/** The push store's migrations alone (`chat migrate`); main applies the same ones at startup. */
export const migrate: StoreMigrate = sqlStoreMigrate("push", migrations);

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("push");
  const providers = await openProviders(config, { ttlSeconds: config.PUSH_TTL_SECONDS, timeoutMs: config.PUSH_SEND_TIMEOUT_MS }, logger).catch((err: unknown) => {
    throw new ConfigError([(err as Error).message]);
  });
  const sql = await openConfiguredSql(config, "push");
  await migrateSql(sql, "push", migrations);
  const store = createSqlPushStore(sql);
  const bus = await openConfiguredBus(config, "push", logger);
  const policy = { maxAttempts: config.PUSH_MAX_ATTEMPTS, baseDelayMs: config.PUSH_RETRY_BASE_MS, maxDelayMs: config.PUSH_RETRY_MAX_MS };
  const deliverer = new Deliverer({
    store,
    providers,
    peers: {
      connection: peerClient(ConnectionService, config.CONNECTION_SERVICE_ADDR),
      group: peerClient(GroupService, config.GROUP_SERVICE_ADDR),
      messageStore: peerClient(MessageStoreService, config.MESSAGE_STORE_SERVICE_ADDR),
    },
    bus,
    logger,
    policy,
    owner: `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`,
    claimLeaseMs: config.PUSH_CLAIM_LEASE_MS,
  });
  const subscription = await consume({ bus, deliverer, logger, policy, concurrency: config.PUSH_CONCURRENCY });
  // Sent-records older than the dedup window are forgotten, hourly (and once at startup).
  const prune = () =>
    store.pruneSent(new Date(Date.now() - config.PUSH_DEDUP_WINDOW_MS)).catch((err: unknown) => logger.warn({ err }, "pruning sent-records failed"));
  void prune();
  const pruner = setInterval(() => void prune(), 3_600_000);
  pruner.unref();
  return serve({
    name: "push",
    config,
    services,
    routes: routes(createPushHandler({ store, maxTargetsPerUser: config.MAX_TARGETS_PER_USER })),
    logger,
    closers: [
      () => store.close(),
      () => bus.close(),
      () => Promise.all([...providers.values()].map((p) => p.close())).then(() => undefined),
      () => subscription.stop(),
      () => clearInterval(pruner),
    ],
  });
};
