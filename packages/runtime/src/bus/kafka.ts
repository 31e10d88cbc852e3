// The kafka driver, on kafkajs: an idempotent producer (acks=all) with Java's default partitioner
// (murmur2 of the key, so keys land where Java clients put them), consumer groups tuned for low
// latency, each batch's offset resolved once its handler resolves and committed with the others
// resolved meanwhile (bus/commits.ts: without holding the next batch for the commit's round trip,
// at most one commit every 100 ms), kafkajs's idle request queues fixed (bus/kafkajs-idle.ts).
// kafkajs logs go to pino (warn and above).
import { Kafka, logLevel, Partitioners, type Admin, type Consumer, type EachBatchPayload, type IHeaders, type ISocketFactory, type Producer } from "kafkajs";
import { connect } from "node:net";
import { createLogger, type Logger } from "../log.js";
import { KeyedBatchQueue } from "../serial.js";
import { CoalescedCommits } from "./commits.js";
import "./kafkajs-idle.js";
import { handleUntilDone, type Bus, type BusRecord, type PartitionLag, type SubscribeOptions, type Subscription, type TopicSpec } from "./port.js";

/**
 * kafkajs's own socket factory, with Nagle's algorithm off: a client here has several small
 * requests in flight on one connection (a fetch, an offset commit, a heartbeat), and with Nagle on
 * the later ones wait for the first one's ACK, which the broker may delay by up to 40 ms.
 */
const noDelaySocket: ISocketFactory = ({ host, port, onConnect }) => {
  const socket = connect({ host, port, noDelay: true }, onConnect);
  socket.setKeepAlive(true, 60_000);
  return socket;
};

export interface KafkaBusOptions {
  /** host:port of one or more brokers. */
  brokers: string[];
  clientId: string;
  logger?: Logger;
  /** Replication factor of the topics ensureTopics creates: 1 by default (one-broker development). */
  replicationFactor?: number;
  /** How long publishes wait to go together in one produce request, ms (DEFAULT_LINGER_MS; 0: none). */
  lingerMs?: number;
}

/**
 * The producer's default linger, ms (Kafka's linger.ms): none. A linger of a few ms makes fewer,
 * larger produce requests, for less CPU per message on both sides, and each publish waits that
 * much longer; measured both ways in docs/benchmark-history.md (2026-12-02, night).
 */
export const DEFAULT_LINGER_MS = 0;

/** How long subscribe waits for the member to join its group before failing. */
const JOIN_TIMEOUT_MS = 30_000;

const headersOf = (headers: IHeaders | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    const value = Array.isArray(v) ? v[0] : v;
    if (value !== undefined) out[k] = value.toString();
  }
  return out;
};

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A connect-once resource: the first caller connects; a failed attempt is forgotten so the next call retries. */
function lazily<T>(connect: () => Promise<T>): { get: () => Promise<T>; started: () => Promise<T> | undefined } {
  let ready: Promise<T> | undefined;
  return {
    get: () =>
      (ready ??= connect().catch((err: unknown) => {
        ready = undefined;
        throw err;
      })),
    started: () => ready,
  };
}

/** How often a subscription commits its offsets at most (see CoalescedCommits). */
const COMMIT_INTERVAL_MS = 100;

/** Records of one publish call, copied (the caller may reuse its buffers as soon as publish returns). */
interface Outgoing {
  topic: string;
  messages: { key: string; value: Buffer; headers: Record<string, string> }[];
}

export function createKafkaBus(opts: KafkaBusOptions): Bus {
  const logger = opts.logger ?? createLogger("bus.kafka");
  const where = `Kafka at ${opts.brokers.join(",")}`;
  const unreachable = (err: unknown) => new Error(`${where} is not reachable: ${messageOf(err)}`, { cause: err });
  const kafka = new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    retry: { initialRetryTime: 100, retries: 8 },
    logLevel: logLevel.WARN,
    socketFactory: noDelaySocket,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      if (entry.level <= logLevel.ERROR) logger.error(rest, `kafkajs: ${message}`);
      else logger.warn(rest, `kafkajs: ${message}`);
    },
  });

  const admin = kafka.admin();
  const adminConn = lazily(async () => {
    await admin.connect().catch((err: unknown) => Promise.reject(unreachable(err)));
    return admin;
  });
  const producerConn = lazily(async (): Promise<Producer> => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect().catch((err: unknown) => Promise.reject(unreachable(err)));
    return producer;
  });
  // The idempotent producer allows one request in flight: publishes made meanwhile, or within the
  // linger, go together in the next request. Without a linger, an idle queue's first request
  // still waits for the end of the event loop's turn (`gather`): the publishes of the appends one
  // Cassandra write stored are all made in that turn, and when the first was sent at once, it went
  // alone and the rest waited a produce round trip behind it (at 1,000 msg/s: 1.6-2.3 ms more from
  // stored to delivered at the median, and Kafka at 21% of a core instead of 16%).
  const sends = new KeyedBatchQueue<Outgoing, true>(async (_, batch) => {
    const byTopic = new Map<string, Outgoing["messages"]>();
    for (const o of batch) {
      const list = byTopic.get(o.topic);
      if (list === undefined) byTopic.set(o.topic, [...o.messages]);
      else list.push(...o.messages);
    }
    await (await producerConn.get()).sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
    return batch.map(() => true as const);
  }, { maxBatch: Number.MAX_SAFE_INTEGER, gather: true, lingerMs: opts.lingerMs ?? DEFAULT_LINGER_MS });
  /** Open consumers, each with its commits. */
  const consumers = new Map<Consumer, CoalescedCommits>();

  /** Stops a consumer once what it resolved is committed (batches still in progress wait for their commits). */
  async function stopConsumer(consumer: Consumer, commits: CoalescedCommits): Promise<void> {
    await commits.stop();
    await consumer.disconnect();
  }

  async function ensureTopics(specs: TopicSpec[]): Promise<void> {
    const a = await adminConn.get();
    const existing = new Set(await a.listTopics());
    const present = specs.filter((s) => existing.has(s.name));
    if (present.length > 0) {
      // More partitions would move keys between partitions (and break their order): left to an operator.
      const { topics } = await a.fetchTopicMetadata({ topics: present.map((s) => s.name) });
      for (const t of topics) {
        const want = present.find((s) => s.name === t.name)?.partitions;
        if (want !== undefined && want !== t.partitions.length) logger.warn({ topic: t.name, partitions: t.partitions.length, configured: want }, "topic exists with another partition count; left as it is");
      }
    }
    const missing = specs.filter((s) => !existing.has(s.name));
    if (missing.length === 0) return;
    try {
      await a.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({ topic: s.name, numPartitions: s.partitions, replicationFactor: opts.replicationFactor ?? 1 })),
      });
    } catch (err) {
      // Created, but the broker's metadata did not name them yet when kafkajs looked for their
      // leaders (it waits out "leader not available" only): wait for them here.
      if ((err as { type?: string }).type !== "UNKNOWN_TOPIC_OR_PARTITION") throw err;
      await untilKnown(a, missing.map((s) => s.name));
    }
  }

  /** Waits (up to 10 s) until the broker's metadata has a leader for every partition of the topics. */
  async function untilKnown(a: Admin, names: string[]): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const { topics } = await a.fetchTopicMetadata({ topics: names }).catch(() => ({ topics: [] }));
      if (topics.length === names.length && topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${where}: topics ${names.join(", ")} have no leader after 10 s`);
  }

  /** High watermark of every partition of the topics, by "topic/partition". */
  async function highWatermarks(topics: string[]): Promise<Map<string, number>> {
    const a = await adminConn.get();
    const out = new Map<string, number>();
    for (const topic of topics) for (const p of await a.fetchTopicOffsets(topic)) out.set(`${topic}/${p.partition}`, Number(p.high));
    return out;
  }

  async function subscribe(sub: SubscribeOptions): Promise<Subscription> {
    const consumer = kafka.consumer({
      groupId: sub.groupId,
      // Long polling: the broker answers as soon as a record arrives (minBytes 1); the wait only
      // bounds empty fetches, so a long one costs no latency and saves CPU on both sides.
      maxWaitTimeInMs: 500,
      minBytes: 1,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      rebalanceTimeout: 10_000,
      retry: { retries: 10 },
    });
    /** The partitions this member holds, by "topic/partition". */
    const assigned = new Set<string>();
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      assigned.clear();
      for (const [topic, partitions] of Object.entries(e.payload.memberAssignment)) for (const p of partitions) assigned.add(`${topic}/${p}`);
    });
    // Joined and positioned: the first fetch after joining has fixed where each partition starts.
    const positioned = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${where}: consumer group "${sub.groupId}" not joined within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
      const stopJoin = consumer.on(consumer.events.GROUP_JOIN, () => {
        stopJoin();
        const stopFetch = consumer.on(consumer.events.FETCH, () => {
          stopFetch();
          clearTimeout(timer);
          resolve();
        });
      });
      consumer.on(consumer.events.CRASH, (e) => {
        // After a retriable error kafkajs restarts the consumer itself (a broker that has just
        // started answers "the coordinator is loading" for a while): only a crash it gives up on
        // fails the subscription; JOIN_TIMEOUT_MS bounds the wait either way.
        if (e.payload.restart) return;
        clearTimeout(timer);
        reject(new Error(`${where}: consumer group "${sub.groupId}" failed: ${messageOf(e.payload.error)}`, { cause: e.payload.error }));
      });
    });
    positioned.catch(() => undefined); // observed below; a later crash is kafkajs's to restart
    const commits = new CoalescedCommits(COMMIT_INTERVAL_MS, (err) =>
      logger.warn({ err, groupId: sub.groupId }, "offset commit failed; what it carried is handled again after a restart or rebalance"),
    );

    try {
      await consumer.connect().catch((err: unknown) => Promise.reject(unreachable(err)));
      consumers.set(consumer, commits);
      await consumer.subscribe({ topics: sub.topics, fromBeginning: sub.fromBeginning ?? false });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 6,
        eachBatch: (payload) => handleBatch(sub, payload, commits),
      });
      await positioned;
    } catch (err) {
      consumers.delete(consumer);
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
    // Where a group with nothing committed started, for status(): kafkajs fixed it at the first fetch, at or before now.
    const startedAt = sub.fromBeginning === true ? undefined : await highWatermarks(sub.topics);

    return {
      async status(): Promise<PartitionLag[]> {
        const a = await adminConn.get();
        const [highs, committed] = await Promise.all([
          Promise.all(sub.topics.map(async (topic) => ({ topic, offsets: await a.fetchTopicOffsets(topic) }))),
          a.fetchOffsets({ groupId: sub.groupId, topics: sub.topics }),
        ]);
        const out: PartitionLag[] = [];
        for (const { topic, offsets } of highs) {
          const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
          for (const h of offsets) {
            const key = `${topic}/${h.partition}`;
            if (!assigned.has(key)) continue;
            const c = Number(mine.find((p) => p.partition === h.partition)?.offset ?? -1);
            const start = c >= 0 ? c : (startedAt?.get(key) ?? Number(h.low));
            out.push({ topic, partition: h.partition, committedOffset: c, lag: Math.max(0, Number(h.high) - start) });
          }
        }
        return out;
      },
      async stop() {
        if (!consumers.delete(consumer)) return;
        await stopConsumer(consumer, commits);
      },
    };
  }

  async function handleBatch(sub: SubscribeOptions, payload: EachBatchPayload, commits: CoalescedCommits): Promise<void> {
    const { batch } = payload;
    const live = () => payload.isRunning() && !payload.isStale();
    const last = batch.messages.at(-1);
    if (last === undefined || !live()) return;
    const records: BusRecord[] = batch.messages.map((m) => ({
      topic: batch.topic,
      partition: batch.partition,
      offset: m.offset,
      key: m.key?.toString() ?? "",
      value: m.value ?? new Uint8Array(),
      headers: headersOf(m.headers),
      timestamp: Number(m.timestamp),
    }));
    const handled = await handleUntilDone(sub.handle, records, logger, live, () => payload.heartbeat());
    if (!handled) return; // not resolved, not committed: redelivered after the rebalance or restart
    // The next batch does not wait for the commit's round trip to the group coordinator (it was a
    // fixed share of routing's cycle), except while stopping: the next member resumes after it.
    payload.resolveOffset(last.offset);
    await commits.resolved(() => payload.commitOffsetsIfNecessary({ topics: payload.uncommittedOffsets().topics }));
  }

  return {
    driver: "kafka",
    ensureTopics,
    async publish(topic, records) {
      if (records.length === 0) return;
      await sends.run("", { topic, messages: records.map((r) => ({ key: r.key, value: Buffer.from(r.value), headers: { ...r.headers } })) });
    },
    subscribe,
    async health() {
      const a = await adminConn.get();
      await a.describeCluster().catch((err: unknown) => Promise.reject(unreachable(err)));
    },
    async close() {
      const open = [...consumers];
      consumers.clear();
      await Promise.all(open.map(([c, commits]) => stopConsumer(c, commits)));
      const producer = producerConn.started();
      if (producer !== undefined) await (await producer.catch(() => undefined))?.disconnect();
      if (adminConn.started() !== undefined) await admin.disconnect();
    },
  };
}
