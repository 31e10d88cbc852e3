// Applies a component's SQL migrations once each, in order, recording them in schema_migrations.
// Each migration runs in its own transaction with its record, so it is applied entirely or not at
// all. Safe when several processes start at once: on PostgreSQL a transaction-scoped advisory lock
// serialises them (the second sees the first's record and skips); PGlite is one process.
import type { Sql, SqlExecutor } from "./port.js";

export interface SqlMigration {
  id: string;
  sql: string;
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  component text NOT NULL,
  id text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (component, id))`;

/** Returns the ids applied by this call (empty when all were applied before). */
export async function migrateSql(sql: Sql, component: string, migrations: SqlMigration[]): Promise<string[]> {
  const ids = migrations.map((m) => m.id);
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate !== undefined) throw new Error(`migrations of ${component}: id "${duplicate}" appears twice`);

  const locked = async (tx: SqlExecutor) => {
    if (sql.driver === "postgres") await tx.query("SELECT pg_advisory_xact_lock(hashtext('schema_migrations'))");
  };
  await sql.transaction(async (tx) => {
    await locked(tx);
    await tx.exec(CREATE_TABLE);
  });
  const applied: string[] = [];
  for (const m of migrations) {
    const done = await sql.transaction(async (tx) => {
      await locked(tx);
      const seen = await tx.query("SELECT 1 FROM schema_migrations WHERE component = $1 AND id = $2", [component, m.id]);
      if (seen.rows.length > 0) return false;
      try {
        await tx.exec(m.sql);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new Error(`migration ${component}/${m.id} failed: ${message}`, { cause: err });
      }
      await tx.query("INSERT INTO schema_migrations (component, id) VALUES ($1, $2)", [component, m.id]);
      return true;
    });
    if (done) applied.push(m.id);
  }
  return applied;
}
