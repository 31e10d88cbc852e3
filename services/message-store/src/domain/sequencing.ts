// Sequencing rules: seqs are 1, 2, 3, ... per conversation, gap-free in acceptance order.
// Appends to one conversation run one after another (runtime's KeyedSerialQueue), so a seq is only taken
// when its write succeeded. No second writer: the Cassandra driver writes a conversation only while
// this replica holds its shard's seq lease (store/leases.ts); the embedded one in a transaction
// with a unique key.

/** Messages per Cassandra partition: (conversation_id, bucket) stays bounded in size. */
export const BUCKET_SIZE = 1000;

export const bucketOf = (seq: number, size = BUCKET_SIZE): number => Math.floor((seq - 1) / size);

/** Clamps a history page request to what the reader may see. */
export interface Window {
  /** Lowest readable seq (inclusive). */
  fromSeq: number;
  /** Highest readable seq (inclusive); Infinity while a member. */
  toSeq: number;
}

export interface PageRequest {
  anchorSeq: number;
  after: boolean;
  limit: number;
}

/**
 * The seq range [lo, hi] of a history page (ascending), or undefined when it is empty. Seqs are
 * gap-free, so the range alone says what the page holds and whether more lies beyond it.
 */
export function pageRange(req: PageRequest, lastSeq: number, window: Window): { lo: number; hi: number; hasMore: boolean } | undefined {
  const floor = Math.max(1, window.fromSeq);
  const ceil = Math.min(lastSeq, window.toSeq);
  if (ceil < floor) return undefined;
  const lo = req.after ? Math.max(req.anchorSeq + 1, floor) : 0;
  const hi = req.after ? Math.min(lo + req.limit - 1, ceil) : Math.min(req.anchorSeq === 0 ? ceil : req.anchorSeq - 1, ceil);
  const start = req.after ? lo : Math.max(hi - req.limit + 1, floor);
  if (hi < start) return undefined;
  return { lo: start, hi, hasMore: req.after ? hi < ceil : start > floor };
}
