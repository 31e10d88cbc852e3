// Cassandra connector: a cassandra-driver client on the service's keyspace (created when missing),
// a health check, and a CQL migration runner guarded by a lightweight transaction.
import cassandra from "cassandra-driver";

export interface CassandraOptions {
  /** host or host:port. */
  contactPoints: string[];
  localDataCenter: string;
  keyspace: string;
  /** CQL replication map; SimpleStrategy with one replica by default (one-node development). */
  replication?: string;
}

export interface CassandraSession {
  client: cassandra.Client;
  health(): Promise<void>;
  close(): Promise<void>;
}

export interface CqlMigration {
  id: string;
  cql: string[];
}

function clientOptions(opts: CassandraOptions, keyspace?: string): cassandra.DseClientOptions {
  const points = opts.contactPoints.map((p) => p.split(":"));
  const port = Number(points[0]?.[1] ?? 9042);
  return {
    contactPoints: points.map(([host]) => host ?? "127.0.0.1"),
    protocolOptions: { port },
    localDataCenter: opts.localDataCenter,
    ...(keyspace === undefined ? {} : { keyspace }),
    queryOptions: { prepare: true, consistency: cassandra.types.consistencies.localQuorum },
    pooling: { coreConnectionsPerHost: { [cassandra.types.distance.local]: 2 } },
    socketOptions: { connectTimeout: 10_000, readTimeout: 12_000 },
  };
}

export async function openCassandra(opts: CassandraOptions): Promise<CassandraSession> {
  if (!/^[a-z][a-z0-9_]{0,47}$/.test(opts.keyspace)) throw new Error(`invalid keyspace name "${opts.keyspace}"`);
  const bootstrap = new cassandra.Client(clientOptions(opts));
  try {
    await bootstrap.connect();
    await schemaChange(() =>
      bootstrap.execute(
        `CREATE KEYSPACE IF NOT EXISTS ${opts.keyspace} WITH replication = ${opts.replication ?? "{'class': 'SimpleStrategy', 'replication_factor': 1}"}`,
      ),
    );
  } finally {
    await bootstrap.shutdown();
  }
  const client = new cassandra.Client(clientOptions(opts, opts.keyspace));
  await client.connect();
  return {
    client,
    async health() {
      await client.execute("SELECT release_version FROM system.local");
    },
    close: () => client.shutdown(),
  };
}

/**
 * Runs a schema statement, retrying a few times: two processes creating the same keyspace or
 * table at once can see a transient conflict until the schema agrees.
 */
async function schemaChange<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

/** Waits for another process's claim to finish; false when it never does (that process died). */
async function doneWithin(client: cassandra.Client, component: string, id: string, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const row = (await client.execute("SELECT done FROM schema_migrations WHERE component = ? AND id = ?", [component, id])).first();
    if (row?.["done"] === true) return true;
  }
  return false;
}

/** Applies each migration not yet recorded; the LWT claim makes one process apply it. */
export async function migrateCql(session: CassandraSession, component: string, migrations: CqlMigration[]): Promise<string[]> {
  const { client } = session;
  await schemaChange(() =>
    client.execute("CREATE TABLE IF NOT EXISTS schema_migrations (component text, id text, applied_at timestamp, done boolean, PRIMARY KEY ((component), id))"),
  );
  const applied: string[] = [];
  for (const m of migrations) {
    const claim = await client.execute(
      "INSERT INTO schema_migrations (component, id, applied_at, done) VALUES (?, ?, toTimestamp(now()), false) IF NOT EXISTS",
      [component, m.id],
    );
    if (!claim.wasApplied() && (await doneWithin(client, component, m.id, 10_000))) continue;
    // Statements are idempotent (IF NOT EXISTS), so a crash mid-migration is repaired by a rerun.
    for (const statement of m.cql) await schemaChange(() => client.execute(statement));
    await client.execute("UPDATE schema_migrations SET done = true WHERE component = ? AND id = ?", [component, m.id]);
    applied.push(m.id);
  }
  return applied;
}
