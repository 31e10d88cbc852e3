// What push consumes: PushRequested (chat.push.v1, key user_id) as consumer group "push". A batch
// (one partition) is delivered with bounded concurrency; the batch commits once every event is
// settled: sent, suppressed, skipped or dead-lettered (chat.push.dlq.v1). An event that cannot be
// decoded, or whose handling keeps failing, is dead-lettered after bounded attempts, so no poison
// event blocks its partition. Sent-records make a batch seen again (crash, rebalance) send nothing twice.
import { fromBinary } from "@bufbuild/protobuf";
import { PushRequestedSchema, type PushRequested } from "../../../../gen/chat/events/v1/events_pb.js";
import type { Bus, BusRecord, Subscription } from "../../../../packages/runtime/src/bus/port.js";
import type { Logger } from "../../../../packages/runtime/src/log.js";
import { withConsumerSpan } from "../../../../packages/runtime/src/telemetry/propagation.js";
import { topics } from "../../../../packages/runtime/src/topics.js";
import type { RetryPolicy } from "../domain/delivery.js";
import { nextRetry } from "../domain/delivery.js";
import type { Deliverer } from "../deliverer.js";

export const CONSUMER_GROUP = "push";

export interface ConsumeOptions {
  bus: Bus;
  deliverer: Deliverer;
  logger: Logger;
  /** Attempts for an event whose handling throws (a peer or the store unavailable). */
  policy: RetryPolicy;
  /** Events of one batch handled at once. */
  concurrency: number;
}

/** Runs fn over items, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function consume(opts: ConsumeOptions): Promise<Subscription> {
  const { deliverer, logger, policy } = opts;
  const handleOne = async (record: BusRecord): Promise<void> => {
    let event: PushRequested;
    try {
      event = fromBinary(PushRequestedSchema, record.value);
    } catch (err) {
      await deliverer.deadLetter(undefined, `undecodable PushRequested at ${record.topic}/${record.partition}@${record.offset}: ${(err as Error).message}`, 1);
      return;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await withConsumerSpan("push", record.headers, () => deliverer.deliver(event));
        return;
      } catch (err) {
        const decision = nextRetry(attempt, { kind: "transient", why: (err as Error).message }, policy);
        if (!decision.retry) {
          await deliverer.deadLetter(event, decision.why, attempt);
          return;
        }
        logger.warn({ err, userId: event.userId, attempt, retryInMs: decision.delayMs }, "push request failed; retrying");
        await new Promise((r) => setTimeout(r, decision.delayMs));
      }
    }
  };
  return opts.bus.subscribe({
    groupId: CONSUMER_GROUP,
    topics: [topics.pushRequested.name],
    handle: (records) => eachLimited(records, opts.concurrency, handleOne),
  });
}
