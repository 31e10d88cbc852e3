// Driver settings and openers shared by the services' main.ts files, so every service spells a
// driver choice the same way. Each opener is the only place its driver is chosen by name.
import { commonSettings, driver, int, list, loadConfig, z } from "./config.js";
import { openBus } from "./bus/index.js";
import { DEFAULT_LINGER_MS } from "./bus/kafka.js";
import { namespaced } from "./bus/namespace.js";
import type { Bus } from "./bus/port.js";
import { openCassandra, type CassandraSession } from "./cassandra.js";
import type { Logger } from "./log.js";
import { required, type StoreMigrate } from "./service.js";
import { migrateSql, type SqlMigration } from "./sql/migrate.js";
import { openPglite } from "./sql/pglite.js";
import type { Sql } from "./sql/port.js";
import { openPostgres } from "./sql/postgres.js";
import { topicSpecs } from "./topics.js";

/** BUS_DRIVER=memory (embedded, in-process) or kafka (KAFKA_BROKERS). */
export const busSettings = {
  BUS_DRIVER: driver(["memory", "kafka"], "memory"),
  KAFKA_BROKERS: list().optional(),
  KAFKA_PARTITIONS: int(6, 1),
  /** How long publishes wait to go together in one produce request, ms (0: none; see bus/kafka.ts). */
  KAFKA_LINGER_MS: int(DEFAULT_LINGER_MS).pipe(z.number().max(1_000)),
  /** A prefix for topic names and consumer groups, so several meshes can share one Kafka. */
  BUS_NAMESPACE: z.string().regex(/^[A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-' only").default(""),
};

export async function openConfiguredBus(
  config: { BUS_DRIVER: "memory" | "kafka"; KAFKA_BROKERS?: string[] | undefined; KAFKA_PARTITIONS: number; KAFKA_LINGER_MS: number; BUS_NAMESPACE: string },
  clientId: string,
  logger: Logger,
): Promise<Bus> {
  const bus = namespaced(
    config.BUS_DRIVER === "kafka"
      ? openBus("kafka", { brokers: required(config.KAFKA_BROKERS, "KAFKA_BROKERS", "BUS_DRIVER=kafka"), clientId, logger, lingerMs: config.KAFKA_LINGER_MS })
      : openBus("memory"),
    config.BUS_NAMESPACE,
  );
  await bus.ensureTopics(topicSpecs(config.KAFKA_PARTITIONS));
  return bus;
}

/** STORE_DRIVER=embedded (PGlite under DATA_DIR/<component>) or postgres (PG_URL). */
export const sqlSettings = {
  STORE_DRIVER: driver(["embedded", "postgres"], "embedded"),
  PG_URL: z.string().optional(),
};

export async function openConfiguredSql(
  config: { STORE_DRIVER: "embedded" | "postgres"; PG_URL?: string | undefined; DATA_DIR: string },
  component: string,
): Promise<Sql> {
  return config.STORE_DRIVER === "postgres"
    ? openPostgres(required(config.PG_URL, "PG_URL", "STORE_DRIVER=postgres"))
    : openPglite(`${config.DATA_DIR}/${component}`);
}

/** A SQL store's migrations alone (`chat migrate`), on the driver its settings choose. */
export function sqlStoreMigrate(component: string, migrations: SqlMigration[]): StoreMigrate {
  return async (env) => {
    const sql = await openConfiguredSql(loadConfig(z.object({ ...commonSettings, ...sqlSettings }), env), component);
    try {
      return await migrateSql(sql, component, migrations);
    } finally {
      await sql.close();
    }
  };
}

/** Cassandra settings, used when a service's STORE_DRIVER is cassandra. */
export const cassandraSettings = {
  CASSANDRA_CONTACT_POINTS: list().optional(),
  CASSANDRA_LOCAL_DC: z.string().default("datacenter1"),
  CASSANDRA_KEYSPACE: z.string().regex(/^[a-z][a-z0-9_]{0,47}$/, "must be a lowercase CQL identifier").default("chat"),
};

export async function openConfiguredCassandra(config: {
  CASSANDRA_CONTACT_POINTS?: string[] | undefined;
  CASSANDRA_LOCAL_DC: string;
  CASSANDRA_KEYSPACE: string;
}): Promise<CassandraSession> {
  return openCassandra({
    contactPoints: required(config.CASSANDRA_CONTACT_POINTS, "CASSANDRA_CONTACT_POINTS", "STORE_DRIVER=cassandra"),
    localDataCenter: config.CASSANDRA_LOCAL_DC,
    keyspace: config.CASSANDRA_KEYSPACE,
  });
}

