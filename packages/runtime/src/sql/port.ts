// The SQL port shared by the embedded (PGlite) and production (PostgreSQL) drivers, so one store
// written in SQL runs on both. Parameters are $1..$n. Both drivers return int8 as a JS number,
// timestamptz as Date, jsonb parsed, bytea as Uint8Array.

export interface SqlExecutor {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[]; rowCount: number }>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Sql extends SqlExecutor {
  readonly driver: "pglite" | "postgres";
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  health(): Promise<void>;
  close(): Promise<void>;
}
