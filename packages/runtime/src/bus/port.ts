// The event bus port. Two drivers: memory (the embedded mode's in-process broker) and kafka.
//
// Semantics both drivers keep (test/bus.contract.test.ts proves them):
// - publish resolves only once the records are durable (Kafka: acks=all, idempotent producer);
// - records with the same key keep their order (same partition by key hash);
// - subscribe is at-least-once: `handle` receives a batch of ONE partition in offset order; the
//   offsets are committed only after `handle` resolves; if it throws, the same batch is retried
//   after a bounded backoff, never skipped; members of one group share the partitions;
// - stop() lets the batch in progress finish, then returns.

export interface OutgoingRecord {
  key: string;
  value: Uint8Array;
  headers?: Record<string, string>;
}

export interface BusRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
  timestamp: number;
}

export interface TopicSpec {
  name: string;
  partitions: number;
}

export interface SubscribeOptions {
  groupId: string;
  topics: string[];
  fromBeginning?: boolean;
  handle: (records: BusRecord[]) => Promise<void>;
}

export interface PartitionLag {
  topic: string;
  partition: number;
  committedOffset: number;
  lag: number;
}

export interface Subscription {
  status(): Promise<PartitionLag[]>;
  stop(): Promise<void>;
}

export interface Bus {
  readonly driver: "memory" | "kafka";
  ensureTopics(topics: TopicSpec[]): Promise<void>;
  publish(topic: string, records: OutgoingRecord[]): Promise<void>;
  subscribe(opts: SubscribeOptions): Promise<Subscription>;
  health(): Promise<void>;
  close(): Promise<void>;
}

/** Backoff before retrying a failed batch: 50 ms doubling to 5 s. */
export const retryDelayMs = (attempt: number): number => Math.min(5_000, 50 * 2 ** Math.min(attempt, 7));

/** Stable partition of a key (FNV-1a), for the memory driver. Kafka uses its own murmur2 partitioner. */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
