// The production SQL driver: PostgreSQL through a pg connection pool.
import pg from "pg";
import type { Sql, SqlExecutor } from "./port.js";

// int8 as a JS number (our counts and seqs stay far below 2^53), like the PGlite driver.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

export async function openPostgres(url: string, opts: { max?: number } = {}): Promise<Sql> {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, idleTimeoutMillis: 30_000 });
  pool.on("error", () => undefined); // an idle client's error; the next query reports it
  const exec = (q: pg.Pool | pg.PoolClient): SqlExecutor => ({
    async query<R>(text: string, params?: unknown[]) {
      const r = await q.query(text, params);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length };
    },
    async exec(script: string) {
      await q.query(script);
    },
  });
  const direct = exec(pool);
  await pool.query("SELECT 1");
  return {
    driver: "postgres",
    query: (text, params) => direct.query(text, params),
    exec: (script) => direct.exec(script),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const result = await fn(exec(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async health() {
      await pool.query("SELECT 1");
    },
    async close() {
      await pool.end();
    },
  };
}
