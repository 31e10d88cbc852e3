// Cassandra connector: a cassandra-driver client on the service's keyspace (created when missing),
// a health check, and a CQL migration runner guarded by a lightweight transaction. Statements are
// prepared by default (queryOptions.prepare), at LOCAL_QUORUM.
import cassandra from "cassandra-driver";

export interface CassandraOptions {
  /** host, host:port or [ipv6]:port; a contact point's port applies to every node (9042 by default). */
  contactPoints: string[];
  localDataCenter: string;
  keyspace: string;
  /** CQL replication map; SimpleStrategy with one replica by default (one-node development). */
  replication?: string;
}

export interface CassandraSession {
  /** Connected to the keyspace. */
  client: cassandra.Client;
  health(): Promise<void>;
  close(): Promise<void>;
}

export interface CqlMigration {
  id: string;
  /** Statements run one by one; make each idempotent (IF NOT EXISTS): a crash mid-way reruns them. */
  cql: string[];
}

const KEYSPACE = /^[a-z][a-z0-9_]{0,47}$/;
function messageOf(err: unknown): string {
  // NoHostAvailableError's own message embeds a multi-line dump of its first cause: list them instead.
  if (err instanceof cassandra.errors.NoHostAvailableError) {
    const causes = Object.entries(err.innerErrors as Record<string, unknown>).map(([host, e]) => `${host}: ${e instanceof Error ? e.message : String(e)}`);
    if (causes.length > 0) return `no host available (${causes.join("; ")})`;
  }
  return err instanceof Error ? err.message : String(err);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CONNECT_ATTEMPTS = 3;

/** The port of the first contact point that names one ("h:p" or "[v6]:p"). */
function portOf(contactPoints: string[]): number | undefined {
  for (const point of contactPoints) {
    const match = /^(?:\[[^\]]+\]|[^:]+):(\d+)$/.exec(point);
    if (match?.[1] !== undefined) return Number(match[1]);
  }
  return undefined;
}

function clientOptions(opts: CassandraOptions, keyspace?: string): cassandra.DseClientOptions {
  return {
    contactPoints: opts.contactPoints,
    protocolOptions: { port: portOf(opts.contactPoints) ?? 9042 },
    localDataCenter: opts.localDataCenter,
    ...(keyspace === undefined ? {} : { keyspace }),
    queryOptions: { prepare: true, consistency: cassandra.types.consistencies.localQuorum },
    pooling: { coreConnectionsPerHost: { [cassandra.types.distance.local]: 2 } },
    socketOptions: { connectTimeout: 10_000, readTimeout: 12_000 },
  };
}

/** Connects to the keyspace, creating it first when missing. */
export async function openCassandra(opts: CassandraOptions): Promise<CassandraSession> {
  if (!KEYSPACE.test(opts.keyspace)) throw new Error(`invalid Cassandra keyspace name "${opts.keyspace}": lowercase letters, digits and _, at most 48`);
  const where = `Cassandra at ${opts.contactPoints.join(",")} (data center ${opts.localDataCenter})`;
  // A connection that reaches no host (refused, timed out, or refused by every node) is tried
  // twice more, half a second apart: a server that had just reported itself ready was once seen
  // refusing a first connection (CI, cause not found).
  const connect = async (keyspace?: string): Promise<cassandra.Client> => {
    for (let attempt = 1; ; attempt++) {
      const client = new cassandra.Client(clientOptions(opts, keyspace));
      try {
        await client.connect();
        return client;
      } catch (err) {
        await client.shutdown().catch(() => undefined);
        if (!(err instanceof cassandra.errors.NoHostAvailableError) || attempt >= CONNECT_ATTEMPTS) {
          throw new Error(`${where} is not reachable: ${messageOf(err)}`, { cause: err });
        }
        await sleep(500);
      }
    }
  };
  const bootstrap = await connect();
  try {
    const replication = opts.replication ?? "{'class': 'SimpleStrategy', 'replication_factor': 1}";
    await schemaChange(() => bootstrap.execute(`CREATE KEYSPACE IF NOT EXISTS ${opts.keyspace} WITH replication = ${replication}`));
  } finally {
    await bootstrap.shutdown();
  }
  const client = await connect(opts.keyspace);
  return {
    client,
    async health() {
      await client.execute("SELECT release_version FROM system.local");
    },
    close: () => client.shutdown(),
  };
}

/** Errors a retry cannot fix: the statement itself is wrong. */
const permanent = new Set<number>([
  cassandra.types.responseErrorCodes.syntaxError,
  cassandra.types.responseErrorCodes.invalid,
  cassandra.types.responseErrorCodes.unauthorized,
  cassandra.types.responseErrorCodes.configError,
]);

/**
 * Runs a schema statement, retrying a few times: two processes changing the schema at once can
 * see a transient conflict or timeout until the nodes agree. A statement that is wrong fails at once.
 */
async function schemaChange<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const wrong = err instanceof cassandra.errors.ResponseError && permanent.has(err.code);
      if (wrong || attempt >= 5) throw err;
      await sleep(500 * attempt);
    }
  }
}

/** Waits for another process's claim to finish; false when it never does (that process died). */
async function doneWithin(client: cassandra.Client, component: string, id: string, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) {
    const row = (await client.execute("SELECT done FROM schema_migrations WHERE component = ? AND id = ?", [component, id])).first();
    if (row?.["done"] === true) return true;
  }
  return false;
}

/**
 * Applies, in order, each migration not yet recorded in the keyspace's schema_migrations table;
 * returns the ids this call applied. An LWT claim (INSERT ... IF NOT EXISTS) makes one process
 * apply a migration while the others wait for it to be done; a claim left by a process that died
 * is taken over after 10 s (the statements are idempotent).
 */
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
    for (const statement of m.cql) {
      try {
        await schemaChange(() => client.execute(statement));
      } catch (err) {
        throw new Error(`migration ${component}/${m.id} failed on "${statement.slice(0, 80)}": ${messageOf(err)}`, { cause: err });
      }
    }
    await client.execute("UPDATE schema_migrations SET done = true WHERE component = ? AND id = ?", [component, m.id]);
    applied.push(m.id);
  }
  return applied;
}
