// What the Cassandra driver's files share: reading bigint columns.
import cassandra from "cassandra-driver";

export const { Long } = cassandra.types;

/** bigint columns come back as Long (or bigint / number depending on client options). */
export const num = (v: unknown): number => {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Long) return v.toNumber();
  if (v === null || v === undefined) return 0;
  throw new TypeError(`not a number: ${typeof v}`);
};
