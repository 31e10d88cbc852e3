// The event bus port. Two drivers: memory (the embedded mode's in-process broker) and kafka.
//
// Semantics both drivers keep (test/bus.contract.test.ts proves them):
// - publish resolves only once the records are durable (Kafka: acks=all, idempotent producer;
//   memory: appended to the process's broker);
// - records with the same key keep their order: they go to the same partition (key hash).
//   Records of different keys have no order between them;
// - subscribe is at-least-once: `handle` receives a batch of records of ONE partition, in offset
//   order; the batch's offsets are committed only after `handle` resolves; if it throws, the same
//   batch is retried after a bounded exponential backoff (logged), never skipped. So a handler
//   must be idempotent: a batch may be seen again after a crash, a rebalance or a retry;
// - members of one group (same groupId) share the partitions: each partition is handled by one
//   member at a time, and batches of different partitions may run concurrently;
// - a group that has no committed position yet starts at the end of each partition as of the
//   subscribe call (at the beginning with fromBeginning): what is published after subscribe
//   resolves reaches the group; fromBeginning means nothing once the group has committed;
// - stop() lets the batch in progress finish (and commits it), then returns; close() ends the
//   driver's connections (the memory driver's shared broker lives as long as the process).

import type { Logger } from "../log.js";

/** A record to publish. The value is copied (or serialised) by publish: reusing the buffer afterwards is safe. */
export interface OutgoingRecord {
  key: string;
  value: Uint8Array;
  /** Trace context and the like; UTF-8 strings. */
  headers?: Record<string, string>;
}

/** A consumed record. offset is a decimal string (Kafka offsets are 64-bit). */
export interface BusRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
  /** When the record was appended (ms since the epoch). */
  timestamp: number;
}

export interface TopicSpec {
  name: string;
  partitions: number;
}

export interface SubscribeOptions {
  groupId: string;
  topics: string[];
  /** Where a group with no committed position starts: the beginning (true) or the end (default). */
  fromBeginning?: boolean;
  /** Handles one partition's batch; resolve to commit it, throw to have it retried. */
  handle: (records: BusRecord[]) => Promise<void>;
}

/** One partition held by this member: committedOffset is the next offset to handle (-1: none committed yet). */
export interface PartitionLag {
  topic: string;
  partition: number;
  committedOffset: number;
  lag: number;
}

export interface Subscription {
  /** The partitions this member holds now, with their lag. */
  status(): Promise<PartitionLag[]>;
  /** Finishes and commits the batch in progress, leaves the group, then resolves. */
  stop(): Promise<void>;
}

export interface Bus {
  readonly driver: "memory" | "kafka";
  /** Creates the topics that do not exist yet (an existing topic keeps its partition count). */
  ensureTopics(topics: TopicSpec[]): Promise<void>;
  /**
   * Resolves once the records are durably on the topic. Records are handed over when publish is
   * called: those of successive calls with the same key keep their call order, even when a later
   * call is made before an earlier one resolved.
   */
  publish(topic: string, records: OutgoingRecord[]): Promise<void>;
  /** Resolves once the member has joined its group and its starting positions are fixed. */
  subscribe(opts: SubscribeOptions): Promise<Subscription>;
  health(): Promise<void>;
  close(): Promise<void>;
}

/** Backoff before retrying a failed batch: 50 ms doubling up to 5 s. */
export const retryDelayMs = (attempt: number): number => Math.min(5_000, 50 * 2 ** Math.min(attempt, 7));

/**
 * Runs `handle` on a batch until it resolves, backing off between failures (both drivers use it).
 * Returns false, leaving the batch uncommitted, when `live()` turns false during the backoff
 * (the member is stopping or lost the partition): another member, or the next run, gets the batch.
 */
export async function handleUntilDone(
  handle: (records: BusRecord[]) => Promise<void>,
  records: BusRecord[],
  logger: Logger,
  live: () => boolean,
  beforeRetry: () => Promise<void> = async () => undefined,
): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await handle(records);
      return true;
    } catch (err) {
      const first = records[0];
      const delay = retryDelayMs(attempt);
      logger.warn(
        { err, topic: first?.topic, partition: first?.partition, offset: first?.offset, records: records.length, attempt, retryInMs: delay },
        "bus handler failed; retrying the batch",
      );
      await new Promise((r) => setTimeout(r, delay));
      await beforeRetry();
      if (!live()) return false;
    }
  }
}
