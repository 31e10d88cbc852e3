// One contract for the SQL port, run against both drivers: PGlite (persisted in a temporary
// folder, reopened to prove it) and real PostgreSQL (PG_URL, the local infrastructure's by
// default; the suite fails, naming it, when it is not up).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { migrateSql } from "../src/sql/migrate.js";
import { openPglite } from "../src/sql/pglite.js";
import type { Sql } from "../src/sql/port.js";
import { openPostgres } from "../src/sql/postgres.js";
import { scratchDir } from "../../../tests/support/scratch.js";

const PG_URL = process.env["PG_URL"] ?? "postgres://chat:chat@127.0.0.1:15432/chat";

function sqlContract(name: string, open: () => Promise<Sql>, reopen?: () => Promise<Sql>): void {
  describe(`sql contract: ${name}`, () => {
    let sql: Sql;
    const table = `t_${randomBytes(4).toString("hex")}`;
    const migrations = [
      { id: "001", sql: `CREATE TABLE ${table} (id text PRIMARY KEY, n bigint, at timestamptz, doc jsonb, raw bytea); CREATE INDEX ON ${table} (n);` },
      { id: "002", sql: `ALTER TABLE ${table} ADD COLUMN note text` },
    ];
    before(async () => {
      sql = await open();
    });
    after(async () => {
      await sql?.query(`DROP TABLE IF EXISTS ${table}`);
      await sql?.query("DELETE FROM schema_migrations WHERE component = $1", [table]);
      await sql?.close();
    });

    it("migrates once, however often and however concurrently it runs", async () => {
      const runs = await Promise.all([migrateSql(sql, table, migrations), migrateSql(sql, table, migrations)]);
      assert.deepEqual(runs.flat().sort(), ["001", "002"]);
      assert.deepEqual(await migrateSql(sql, table, migrations), []);
      await assert.rejects(migrateSql(sql, table, [...migrations, { id: "003", sql: "CREATE TABLE" }]), new RegExp(`migration ${table}/003 failed`));
      assert.deepEqual(await migrateSql(sql, table, [...migrations, { id: "003", sql: `ALTER TABLE ${table} ADD COLUMN extra int` }]), ["003"]);
    });

    it("returns the same JS types from both drivers", async () => {
      const at = new Date("2026-01-02T03:04:05.678Z");
      const bytes = new Uint8Array([0, 1, 2, 255]);
      const inserted = await sql.query(`INSERT INTO ${table} (id, n, at, doc, raw) VALUES ($1, $2, $3, $4, $5)`, [
        "a",
        9_007_199_254_740_000,
        at,
        JSON.stringify({ x: [1, "two"], y: null }),
        bytes,
      ]);
      assert.equal(inserted.rowCount, 1);
      const row = (
        await sql.query(
          `SELECT n, at, doc, raw, count(*) OVER () AS total, ARRAY[n, 2]::int8[] AS ns, 1.50::numeric AS dec, 7::int4 AS i4, 0.5::float8 AS f8,
             DATE '2026-03-04' AS day, TIMESTAMP '2026-03-04 05:06:07.5' AS local, true AS yes, '{"a":1}'::json AS j, NULL::text AS nothing
           FROM ${table} WHERE id = $1`,
          ["a"],
        )
      ).rows[0];
      assert.deepEqual(row, {
        n: 9_007_199_254_740_000,
        at,
        doc: { x: [1, "two"], y: null },
        raw: bytes,
        total: 1,
        ns: [9_007_199_254_740_000, 2],
        dec: "1.50",
        i4: 7,
        f8: 0.5,
        day: "2026-03-04",
        local: new Date("2026-03-04T05:06:07.500Z"),
        yes: true,
        j: { a: 1 },
        nothing: null,
      });
      assert.equal(Object.getPrototypeOf(row?.["raw"]), Uint8Array.prototype, "bytea is a plain Uint8Array");
      // bigint parameters work too; SELECT counts the rows it returns.
      const selected = await sql.query(`SELECT id FROM ${table} WHERE n = $1`, [9_007_199_254_740_000n]);
      assert.equal(selected.rowCount, 1);
    });

    it("commits a transaction that resolves and rolls back one that throws", async () => {
      assert.equal(await sql.transaction(async (tx) => (await tx.query(`INSERT INTO ${table} (id, n) VALUES ('b', 1) RETURNING id`)).rows.length), 1);
      let outside: Promise<{ rowCount: number }> | undefined;
      await assert.rejects(
        sql.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${table} (id, n) VALUES ('c', 1)`);
          // A query outside the transaction never sees its uncommitted row (PGlite: it waits for the end).
          outside = sql.query(`SELECT 1 FROM ${table} WHERE id = 'c'`);
          await new Promise((r) => setTimeout(r, 20));
          throw new Error("abort");
        }),
        /abort/,
      );
      assert.equal((await outside)?.rowCount, 0);
      const ids = (await sql.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);
      assert.deepEqual(ids, ["a", "b"]);
      assert.equal((await sql.query(`UPDATE ${table} SET n = n + 1`)).rowCount, 2);
      // A failed statement rolls its transaction back, and the driver stays usable.
      await assert.rejects(sql.transaction(async (tx) => tx.query(`INSERT INTO ${table} (id) VALUES ('a')`)), /duplicate key/);
      assert.equal((await sql.query(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.["n"], 2);
    });

    it("answers its health check", async () => {
      await sql.health();
    });

    if (reopen !== undefined) {
      it("keeps its data across a restart", async () => {
        await sql.close();
        sql = await reopen();
        const ids = (await sql.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => r.id);
        assert.deepEqual(ids, ["a", "b"]);
        assert.deepEqual(await migrateSql(sql, table, migrations), []);
      });
    }
  });
}

const dir = join(scratchDir("sql-contract"), "nested", "data");
sqlContract("pglite", () => openPglite(dir), () => openPglite(dir));
sqlContract("pglite in memory", () => openPglite(undefined));
sqlContract("postgres", () => openPostgres(PG_URL));

describe("sql drivers", () => {
  it("name the server they cannot reach, without its password", async () => {
    await assert.rejects(openPostgres("postgres://chat:secret@127.0.0.1:1/chat"), (err: Error) => {
      assert.match(err.message, /^PostgreSQL at postgres:\/\/chat:\*\*\*@127\.0\.0\.1:1\/chat is not reachable: /);
      return true;
    });
  });
});
