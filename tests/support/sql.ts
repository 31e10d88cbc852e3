// The two SQL drivers for contract tests: PGlite in a fresh temporary folder, and the real
// PostgreSQL of `make test` (PG_URL). A missing PG_URL fails the test, naming it.
import assert from "node:assert/strict";
import { openPglite } from "../../packages/runtime/src/sql/pglite.js";
import type { Sql } from "../../packages/runtime/src/sql/port.js";
import { openPostgres } from "../../packages/runtime/src/sql/postgres.js";
import { scratchDir } from "./scratch.js";

export interface SqlDriver {
  name: string;
  open(): Promise<Sql>;
}

export function sqlDrivers(prefix: string): SqlDriver[] {
  const dir = scratchDir(prefix);
  return [
    { name: "embedded (PGlite)", open: () => openPglite(dir) },
    { name: "postgres", open: () => openPostgres(process.env["PG_URL"] ?? assert.fail("PG_URL is not set: run through 'make test' (real PostgreSQL required)")) },
  ];
}
