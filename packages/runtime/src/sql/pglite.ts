// The embedded SQL driver: PGlite (PostgreSQL compiled to WebAssembly) in this process, persisted
// under a data folder (or in memory). One connection: PGlite runs one transaction at a time, and
// a query outside it waits until it ends, so transactions are serialised and isolated.
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { mkdirSync } from "node:fs";
import { sharedParsers, type Sql, type SqlExecutor } from "./port.js";

function executor(db: PGlite | Transaction): SqlExecutor {
  return {
    async query<R>(text: string, params?: unknown[]) {
      const r = await db.query<R>(text, params ?? []);
      // PGlite counts no rows for a SELECT; pg counts the rows returned.
      return { rows: r.rows, rowCount: r.affectedRows || r.rows.length };
    },
    async exec(script: string) {
      await db.exec(script);
    },
  };
}

/** Opens PGlite on dataDir (created when missing; the data persists), or in memory when undefined. */
export async function openPglite(dataDir: string | undefined): Promise<Sql> {
  let db: PGlite;
  try {
    if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
    db = await PGlite.create(dataDir, { parsers: sharedParsers });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot open the embedded database (PGlite) ${dataDir === undefined ? "in memory" : `in ${dataDir}`}: ${message}`, { cause: err });
  }
  const direct = executor(db);
  return {
    driver: "pglite",
    query: (text, params) => direct.query(text, params),
    exec: (script) => direct.exec(script),
    transaction: (fn) => db.transaction((tx) => fn(executor(tx))),
    async health() {
      await db.query("SELECT 1");
    },
    async close() {
      if (!db.closed) await db.close();
    },
  };
}
