// One contract for the SQL port, run against both drivers: PGlite (persisted in a temporary
// folder) and real PostgreSQL.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { migrateSql } from "../src/sql/migrate.js";
import { openPglite } from "../src/sql/pglite.js";
import type { Sql } from "../src/sql/port.js";
import { openPostgres } from "../src/sql/postgres.js";

function sqlContract(name: string, open: () => Promise<Sql>): void {
  describe(`sql contract: ${name}`, () => {
    let sql: Sql;
    const table = `t_${randomBytes(4).toString("hex")}`;
    after(async () => {
      await sql?.query(`DROP TABLE IF EXISTS ${table}`);
      await sql?.close();
    });

    it("migrates once, however often it runs", async () => {
      sql = await open();
      const migrations = [{ id: "001", sql: `CREATE TABLE ${table} (id text PRIMARY KEY, n bigint, at timestamptz, doc jsonb, raw bytea); CREATE INDEX ON ${table} (n);` }];
      assert.deepEqual(await migrateSql(sql, table, migrations), ["001"]);
      assert.deepEqual(await migrateSql(sql, table, migrations), []);
    });

    it("returns the same JS types from both drivers", async () => {
      const at = new Date("2026-01-02T03:04:05.678Z");
      await sql.query(`INSERT INTO ${table} VALUES ($1, $2, $3, $4, $5)`, ["a", 9_007_199_254_740_000, at, JSON.stringify({ x: [1] }), new Uint8Array([1, 2, 255])]);
      const row = (await sql.query<{ n: number; at: Date; doc: unknown; raw: Uint8Array }>(`SELECT n, at, doc, raw FROM ${table} WHERE id = $1`, ["a"])).rows[0];
      assert.equal(row?.n, 9_007_199_254_740_000);
      assert.equal(row?.at.toISOString(), at.toISOString());
      assert.deepEqual(row?.doc, { x: [1] });
      assert.deepEqual([...(row?.raw ?? [])], [1, 2, 255]);
    });

    it("commits a transaction that resolves and rolls back one that throws", async () => {
      await sql.transaction(async (tx) => tx.query(`INSERT INTO ${table} (id, n) VALUES ('b', 1)`));
      await assert.rejects(
        sql.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${table} (id, n) VALUES ('c', 1)`);
          throw new Error("abort");
        }),
        /abort/,
      );
      const ids = (await sql.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);
      assert.deepEqual(ids, ["a", "b"]);
      assert.equal((await sql.query(`UPDATE ${table} SET n = n + 1`)).rowCount, 2);
    });

    it("answers its health check", async () => {
      await sql.health();
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "sql-contract-"));
sqlContract("pglite", () => openPglite(dir));
sqlContract("postgres", () => openPostgres(process.env["PG_URL"] ?? assert.fail("PG_URL is not set: run through 'make test' (real PostgreSQL required)")));
