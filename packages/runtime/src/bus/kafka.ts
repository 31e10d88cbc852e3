// The kafka driver, on kafkajs: an idempotent producer (acks=all), consumer groups tuned for low
// latency, offsets committed after each handled batch.
import { Kafka, logLevel, Partitioners, type Consumer, type IHeaders, type Producer } from "kafkajs";
import { createLogger, type Logger } from "../log.js";
import { retryDelayMs, type Bus, type BusRecord, type OutgoingRecord, type PartitionLag, type Subscription } from "./port.js";

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  logger?: Logger;
  replicationFactor?: number;
}

const headersOf = (headers: IHeaders | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    const value = Array.isArray(v) ? v[0] : v;
    if (value !== undefined) out[k] = value.toString();
  }
  return out;
};

/** Collects records while a send is in flight; each flush sends everything queued in one request. */
class SendBatcher {
  private queued = new Map<string, OutgoingRecord[]>();
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private sending = false;

  constructor(private readonly send: (batches: Map<string, OutgoingRecord[]>) => Promise<void>) {}

  add(topic: string, records: OutgoingRecord[]): Promise<void> {
    const list = this.queued.get(topic);
    if (list === undefined) this.queued.set(topic, [...records]);
    else list.push(...records);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.sending) void this.flush();
    return done;
  }

  private async flush(): Promise<void> {
    this.sending = true;
    while (this.queued.size > 0) {
      const batches = this.queued;
      const waiters = this.waiters;
      this.queued = new Map();
      this.waiters = [];
      try {
        await this.send(batches);
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      }
    }
    this.sending = false;
  }
}

export function createKafkaBus(opts: KafkaBusOptions): Bus {
  const logger = opts.logger ?? createLogger("bus.kafka");
  const kafka = new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    retry: { initialRetryTime: 100, retries: 8 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      if (entry.level <= logLevel.ERROR) logger.error(rest, `kafkajs: ${message}`);
      else logger.warn(rest, `kafkajs: ${message}`);
    },
  });
  const admin = kafka.admin();
  let adminReady: Promise<void> | undefined;
  const withAdmin = async () => {
    adminReady ??= admin.connect();
    await adminReady;
    return admin;
  };
  let producer: Producer | undefined;
  let producerReady: Promise<Producer> | undefined;
  const getProducer = async () => {
    producerReady ??= (async () => {
      producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
      await producer.connect();
      return producer;
    })();
    return producerReady;
  };
  const consumers = new Set<Consumer>();
  // The idempotent producer allows one request in flight; records published meanwhile wait and
  // go together in the next request (no added delay when idle, batches under load).
  const batcher = new SendBatcher(async (batches) => {
    const p = await getProducer();
    await p.sendBatch({
      acks: -1,
      topicMessages: [...batches].map(([topic, list]) => ({
        topic,
        messages: list.map((r) => ({ key: r.key, value: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength), headers: r.headers ?? {} })),
      })),
    });
  });

  return {
    driver: "kafka",
    async ensureTopics(specs) {
      const a = await withAdmin();
      const existing = new Set(await a.listTopics());
      const missing = specs.filter((s) => !existing.has(s.name));
      if (missing.length === 0) return;
      await a.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({ topic: s.name, numPartitions: s.partitions, replicationFactor: opts.replicationFactor ?? 1 })),
      });
    },
    async publish(topic, records) {
      if (records.length === 0) return;
      await batcher.add(topic, records);
    },
    async subscribe(sub): Promise<Subscription> {
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
      consumers.add(consumer);
      await consumer.connect();
      await consumer.subscribe({ topics: sub.topics, fromBeginning: sub.fromBeginning ?? false });
      const assigned = new Map<string, { topic: string; partition: number; committed: number }>();
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        assigned.clear();
        for (const [topic, partitions] of Object.entries(e.payload.memberAssignment)) {
          for (const partition of partitions) assigned.set(`${topic}/${partition}`, { topic, partition, committed: -1 });
        }
      });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 6,
        eachBatch: async (payload) => {
          const { batch } = payload;
          const live = () => payload.isRunning() && !payload.isStale();
          if (batch.messages.length === 0 || !live()) return;
          const records: BusRecord[] = batch.messages.map((m) => ({
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            key: m.key?.toString() ?? "",
            value: m.value ?? new Uint8Array(),
            headers: headersOf(m.headers),
            timestamp: Number(m.timestamp),
          }));
          for (let attempt = 0; ; attempt++) {
            try {
              await sub.handle(records);
              break;
            } catch (err) {
              logger.warn({ err, topic: batch.topic, partition: batch.partition, attempt }, "handler failed; retrying the batch");
              await new Promise((r) => setTimeout(r, retryDelayMs(attempt)));
              await payload.heartbeat();
              if (!live()) return; // not committed: redelivered after the rebalance
            }
          }
          const last = batch.messages[batch.messages.length - 1]?.offset ?? batch.firstOffset() ?? "0";
          payload.resolveOffset(last);
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(Number(last) + 1) }]);
          const entry = assigned.get(`${batch.topic}/${batch.partition}`);
          if (entry !== undefined) entry.committed = Number(last) + 1;
        },
      });
      return {
        async status(): Promise<PartitionLag[]> {
          const a = await withAdmin();
          const out: PartitionLag[] = [];
          for (const topic of sub.topics) {
            const [highs, committed] = await Promise.all([a.fetchTopicOffsets(topic), a.fetchOffsets({ groupId: sub.groupId, topics: [topic] })]);
            const mine = committed[0]?.partitions ?? [];
            for (const h of highs) {
              if (!assigned.has(`${topic}/${h.partition}`)) continue;
              const c = Number(mine.find((p) => p.partition === h.partition)?.offset ?? -1);
              const high = Number(h.high);
              out.push({ topic, partition: h.partition, committedOffset: c, lag: c < 0 ? high - Number(h.low) : high - c });
            }
          }
          return out;
        },
        async stop() {
          consumers.delete(consumer);
          await consumer.disconnect();
        },
      };
    },
    async health() {
      await (await withAdmin()).describeCluster();
    },
    async close() {
      for (const c of consumers) await c.disconnect();
      consumers.clear();
      if (producerReady !== undefined) await (await producerReady).disconnect();
      if (adminReady !== undefined) await admin.disconnect();
    },
  };
}
