// The production SQL driver: PostgreSQL through a pg connection pool. A transaction runs on one
// checked-out connection between BEGIN and COMMIT (ROLLBACK when its function throws). Queries
// with parameters run as named prepared statements: each connection plans one once, not on every
// call (planning cost more than running the services' indexed lookups).
import pg from "pg";
import { oid, sharedParsers, type Sql, type SqlExecutor } from "./port.js";
import { redactUrl } from "../config.js";

type Parser = (text: string) => unknown;
const defaultParser = (id: number) => pg.types.getTypeParser(id, "text") as Parser;
const parseTimestamptz = defaultParser(oid.TIMESTAMPTZ);
const parseInt8Array = defaultParser(oid.INT8_ARRAY);
const toNumbers = (v: unknown): unknown => (Array.isArray(v) ? v.map(toNumbers) : typeof v === "string" ? Number(v) : v);

/** This pool's parsers (not pg's process-wide ones): the port's shared ones, and the arrays and timestamps pg needs on top. */
const parsers: Record<number, Parser> = {
  ...sharedParsers,
  [oid.INT8_ARRAY]: (text) => toNumbers(parseInt8Array(text)),
  [oid.TIMESTAMP]: (text) => parseTimestamptz(/^-?infinity$/.test(text) ? text : `${text}+00`),
};
// Results come in text format (this driver never asks pg for binary).
const types: pg.CustomTypesConfig = { getTypeParser: (id: number) => parsers[id] ?? defaultParser(id) };

/** Statement names by text: the services' queries are a fixed set of texts. */
const statementNames = new Map<string, string>();
const statementName = (text: string): string => {
  let name = statementNames.get(text);
  if (name === undefined) statementNames.set(text, (name = `chat_${statementNames.size + 1}`));
  return name;
};

function executor(q: pg.Pool | pg.PoolClient): SqlExecutor {
  return {
    async query<R>(text: string, params?: unknown[]) {
      const r = params === undefined || params.length === 0 ? await q.query(text) : await q.query({ name: statementName(text), text, values: params });
      return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length };
    },
    async exec(script: string) {
      await q.query(script);
    },
  };
}

/** Opens a pool on url and checks that the server answers. */
export async function openPostgres(url: string, opts: { max?: number } = {}): Promise<Sql> {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000, types });
  pool.on("error", () => undefined); // an idle client's error; the next query reports it
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    await pool.end().catch(() => undefined);
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`PostgreSQL at ${redactUrl(url, "PG_URL")} is not reachable: ${message}`, { cause: err });
  }
  const direct = executor(pool);
  return {
    driver: "postgres",
    query: (text, params) => direct.query(text, params),
    exec: (script) => direct.exec(script),
    async transaction(fn) {
      const client = await pool.connect();
      let broken = false;
      try {
        await client.query("BEGIN");
        const result = await fn(executor(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => (broken = true));
        throw err;
      } finally {
        client.release(broken); // a connection that cannot roll back is closed, not reused
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
