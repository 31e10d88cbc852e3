// The memory driver: an in-process broker for the embedded mode (one node; records live in memory,
// the newest RETAINED per partition once consumed). Same at-least-once semantics as Kafka.
import { createLogger } from "../log.js";
import { partitionOf, retryDelayMs, type Bus, type BusRecord, type PartitionLag, type SubscribeOptions, type Subscription } from "./port.js";

const logger = createLogger("bus.memory");
const DEFAULT_PARTITIONS = 6;
/** Records kept per partition once every group has consumed them (a group that joins later with fromBeginning sees these). */
const RETAINED = 10_000;

interface Partition {
  /** Offset of records[0]. */
  base: number;
  records: BusRecord[];
}

interface Group {
  /** Next offset to deliver, per topic/partition. */
  committed: Map<string, number>;
  members: Member[];
}

interface Member {
  opts: SubscribeOptions;
  busy: Set<string>;
  stopped: boolean;
  inFlight: Set<Promise<void>>;
}

const tp = (topic: string, partition: number) => `${topic}/${partition}`;

export function createMemoryBus(): Bus {
  const topics = new Map<string, Partition[]>();
  const groups = new Map<string, Group>();
  let scheduled = false;

  const partitionsOf = (topic: string): Partition[] => {
    let parts = topics.get(topic);
    if (parts === undefined) {
      parts = Array.from({ length: DEFAULT_PARTITIONS }, () => ({ base: 0, records: [] }));
      topics.set(topic, parts);
    }
    return parts;
  };

  /** The member of a group that owns a partition (partitions spread round-robin over members). */
  const owner = (group: Group, partition: number): Member | undefined => {
    const live = group.members.filter((m) => !m.stopped);
    return live.length === 0 ? undefined : live[partition % live.length];
  };

  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      pump();
    });
  };

  function pump(): void {
    for (const group of groups.values()) {
      for (const member of group.members) {
        if (member.stopped) continue;
        for (const topic of member.opts.topics) {
          partitionsOf(topic).forEach((part, partition) => {
            const key = tp(topic, partition);
            if (owner(group, partition) !== member || member.busy.has(key)) return;
            const next = group.committed.get(key) ?? part.base;
            const batch = part.records.slice(next - part.base);
            if (batch.length === 0) return;
            member.busy.add(key);
            const run = deliver(member, batch).then(() => {
              group.committed.set(key, next + batch.length);
              member.busy.delete(key);
              member.inFlight.delete(run);
              trim(topic, partition);
              schedule();
            });
            member.inFlight.add(run);
          });
        }
      }
    }
  }

  async function deliver(member: Member, batch: BusRecord[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await member.opts.handle(batch);
        return;
      } catch (err) {
        logger.warn({ err, topic: batch[0]?.topic, attempt }, "handler failed; retrying the batch");
        await new Promise((r) => setTimeout(r, retryDelayMs(attempt)));
      }
    }
  }

  /** Drops the oldest records beyond RETAINED that every group subscribed to the topic has committed. */
  function trim(topic: string, partition: number): void {
    const part = partitionsOf(topic)[partition];
    if (part === undefined || part.records.length <= RETAINED) return;
    let min = part.base + part.records.length - RETAINED;
    for (const group of groups.values()) {
      if (!group.members.some((m) => m.opts.topics.includes(topic))) continue;
      min = Math.min(min, group.committed.get(tp(topic, partition)) ?? part.base);
    }
    if (min > part.base) {
      part.records.splice(0, min - part.base);
      part.base = min;
    }
  }

  return {
    driver: "memory",
    async ensureTopics(specs) {
      for (const spec of specs) {
        if (!topics.has(spec.name)) topics.set(spec.name, Array.from({ length: spec.partitions }, () => ({ base: 0, records: [] })));
      }
    },
    async publish(topic, records) {
      const parts = partitionsOf(topic);
      const timestamp = Date.now();
      for (const r of records) {
        const partition = partitionOf(r.key, parts.length);
        const part = parts[partition];
        part.records.push({ topic, partition, offset: String(part.base + part.records.length), key: r.key, value: r.value, headers: r.headers ?? {}, timestamp });
      }
      schedule();
    },
    async subscribe(opts): Promise<Subscription> {
      let group = groups.get(opts.groupId);
      if (group === undefined) groups.set(opts.groupId, (group = { committed: new Map(), members: [] }));
      const member: Member = { opts, busy: new Set(), stopped: false, inFlight: new Set() };
      group.members.push(member);
      // A new group starts where the topic ends now (or at its beginning): as Kafka positions it on joining.
      for (const topic of opts.topics) {
        partitionsOf(topic).forEach((part, partition) => {
          const key = tp(topic, partition);
          if (!group.committed.has(key)) group.committed.set(key, opts.fromBeginning === true ? part.base : part.base + part.records.length);
        });
      }
      const g = group;
      schedule();
      return {
        async status(): Promise<PartitionLag[]> {
          const out: PartitionLag[] = [];
          for (const topic of opts.topics) {
            partitionsOf(topic).forEach((part, partition) => {
              if (owner(g, partition) !== member) return;
              const committed = g.committed.get(tp(topic, partition)) ?? part.base;
              out.push({ topic, partition, committedOffset: committed, lag: part.base + part.records.length - committed });
            });
          }
          return out;
        },
        async stop() {
          member.stopped = true;
          await Promise.all(member.inFlight);
          g.members = g.members.filter((m) => m !== member);
          schedule();
        },
      };
    },
    async health() {},
    async close() {},
  };
}

let shared: Bus | undefined;

/** The process-wide broker: every service of the embedded process publishes and consumes here. */
export function sharedMemoryBus(): Bus {
  shared ??= createMemoryBus();
  return shared;
}
