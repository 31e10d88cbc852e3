// The embedded SQL driver: PGlite (PostgreSQL compiled to WebAssembly) in this process, persisted
// under a data folder (or in memory). One connection: transactions run one at a time.
import { PGlite, types } from "@electric-sql/pglite";
import { mkdirSync } from "node:fs";
import type { Sql, SqlExecutor } from "./port.js";

const parsers = { [types.INT8]: (v: string) => Number(v) };

export async function openPglite(dataDir: string | undefined): Promise<Sql> {
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir, { parsers });
  const exec = (q: Pick<PGlite, "query" | "exec">): SqlExecutor => ({
    async query<R>(text: string, params?: unknown[]) {
      const r = await q.query<R>(text, params ?? []);
      return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
    },
    async exec(script: string) {
      await q.exec(script);
    },
  });
  const direct = exec(db);
  return {
    driver: "pglite",
    query: (text, params) => direct.query(text, params),
    exec: (script) => direct.exec(script),
    transaction: (fn) => db.transaction((tx) => fn(exec(tx))),
    async health() {
      await db.query("SELECT 1");
    },
    async close() {
      await db.close();
    },
  };
}
