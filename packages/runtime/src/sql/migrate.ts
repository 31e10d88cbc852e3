// Applies a component's SQL migrations once each, in order, recording them in schema_migrations.
// Safe when several processes start at once (an advisory lock serialises them on PostgreSQL).
import type { Sql } from "./port.js";

export interface SqlMigration {
  id: string;
  sql: string;
}

export async function migrateSql(sql: Sql, component: string, migrations: SqlMigration[]): Promise<string[]> {
  const applied: string[] = [];
  for (const m of migrations) {
    const done = await sql.transaction(async (tx) => {
      if (sql.driver === "postgres") await tx.query("SELECT pg_advisory_xact_lock(hashtext('schema_migrations'))");
      await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        component text NOT NULL, id text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (component, id))`);
      const seen = await tx.query("SELECT 1 FROM schema_migrations WHERE component = $1 AND id = $2", [component, m.id]);
      if (seen.rows.length > 0) return false;
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (component, id) VALUES ($1, $2)", [component, m.id]);
      return true;
    });
    if (done) applied.push(m.id);
  }
  return applied;
}
