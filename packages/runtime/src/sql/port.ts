// The SQL port shared by the embedded (PGlite) and production (PostgreSQL) drivers, so one store
// written in SQL runs on both. test/sql.contract.test.ts proves the two agree.
//
// Queries use $1..$n parameters on both. Values come back the same from both drivers:
// - int8 (bigint, count(*), bigserial) and int8[] -> JS number. Exact up to 2^53 - 1, which our
//   counters and sequence numbers stay far below; pg alone would give a string, PGlite a number;
// - timestamptz -> Date; timestamp (without time zone) -> Date read as UTC (pg alone would use
//   the process's time zone); date -> "YYYY-MM-DD" string (no time zone to get wrong);
// - json, jsonb -> parsed value; bytea -> plain Uint8Array (not a Buffer: deepEqual-safe);
// - numeric -> string (exact); int2, int4, float4, float8 -> number; uuid, text -> string;
//   bool -> boolean; arrays of these -> arrays.
// Parameters: pass json/jsonb as JSON.stringify(value) (pg would turn a JS array into a
// PostgreSQL array), bytea as Uint8Array, timestamps as Date, int8 as number or bigint.
// rowCount: rows affected by INSERT/UPDATE/DELETE, rows returned by SELECT (as pg counts them).

export interface SqlExecutor {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[]; rowCount: number }>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Sql extends SqlExecutor {
  readonly driver: "pglite" | "postgres";
  /**
   * Runs fn in one transaction: committed when it resolves, rolled back when it throws. Inside fn,
   * use `tx` only: on PGlite (one connection) a query on the outer Sql waits for the transaction
   * to end, so awaiting one inside fn deadlocks.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  health(): Promise<void>;
  close(): Promise<void>;
}

/** PostgreSQL type OIDs (the same in both drivers). */
export const oid = { BYTEA: 17, INT8: 20, INT8_ARRAY: 1016, DATE: 1082, TIMESTAMP: 1114, TIMESTAMPTZ: 1184 } as const;

/**
 * Text-format parsers both drivers install over their defaults, by type OID. PGlite also applies
 * them to array elements; the pg driver registers the arrays it needs itself.
 */
export const sharedParsers: Record<number, (text: string) => unknown> = {
  [oid.INT8]: (text) => Number(text),
  [oid.DATE]: (text) => text,
  // Text format of bytea is hex: \x0102ff.
  [oid.BYTEA]: (text) => new Uint8Array(Buffer.from(text.slice(2), "hex")),
};
