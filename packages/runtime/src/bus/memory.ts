// The memory driver: an in-process broker for the embedded mode (one node, no external server).
// Same semantics as Kafka (see port.ts): partitions by key hash, per-group committed offsets,
// at-least-once delivery of one partition's batch at a time. A publish schedules delivery on the
// next turn of the event loop (setImmediate), and everything queued by then goes in one batch.
// Records live in memory: once every group has handled them, only the newest RETAINED of each
// partition are kept (for a group that joins later with fromBeginning).
import { createLogger } from "../log.js";
import { handleUntilDone, type Bus, type BusRecord, type PartitionLag, type SubscribeOptions, type Subscription } from "./port.js";

const logger = createLogger("bus.memory");
/** Partitions of a topic that is published to or subscribed before ensureTopics names it. */
const DEFAULT_PARTITIONS = 6;
/** Records kept per partition once handled by every group. */
const RETAINED = 10_000;
/** Most records handed to `handle` at once. */
const MAX_BATCH = 1_000;

interface Partition {
  /** Offset of records[0]. */
  base: number;
  records: BusRecord[];
}

interface Member {
  opts: SubscribeOptions;
  stopped: boolean;
  inFlight: Set<Promise<void>>;
}

interface Group {
  /** Next offset to deliver, per topic/partition. */
  committed: Map<string, number>;
  /** Partitions with a batch in a handler now: never two batches of one partition at once. */
  busy: Set<string>;
  members: Member[];
}

const tp = (topic: string, partition: number) => `${topic}/${partition}`;

/** Stable partition of a key (FNV-1a). Kafka's partitioner (murmur2) places keys differently. */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/** A new in-process broker. Services of one process share sharedMemoryBus() instead. */
export function createMemoryBus(): Bus {
  const topics = new Map<string, Partition[]>();
  const groups = new Map<string, Group>();
  let scheduled = false;

  const partitionsOf = (topic: string, count = DEFAULT_PARTITIONS): Partition[] => {
    let parts = topics.get(topic);
    if (parts === undefined) {
      parts = Array.from({ length: count }, () => ({ base: 0, records: [] }));
      topics.set(topic, parts);
    }
    return parts;
  };
  const end = (part: Partition) => part.base + part.records.length;

  /** The member of a group that holds a partition: partitions spread round-robin over the live members. */
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

  /** Starts a batch on every partition that has records, an owner, and no batch in progress. */
  function pump(): void {
    for (const group of groups.values()) {
      for (const member of group.members) {
        if (member.stopped) continue;
        for (const topic of member.opts.topics) {
          partitionsOf(topic).forEach((part, partition) => {
            const key = tp(topic, partition);
            if (group.busy.has(key) || owner(group, partition) !== member) return;
            const next = Math.max(group.committed.get(key) ?? part.base, part.base);
            const batch = part.records.slice(next - part.base, next - part.base + MAX_BATCH);
            if (batch.length === 0) return;
            group.busy.add(key);
            const run = handleUntilDone(member.opts.handle, batch, logger, () => !member.stopped && owner(group, partition) === member).then(
              (handled) => {
                if (handled) group.committed.set(key, next + batch.length);
                group.busy.delete(key);
                member.inFlight.delete(run);
                trim(topic, partition);
                schedule();
              },
            );
            member.inFlight.add(run);
          });
        }
      }
    }
  }

  /**
   * Drops handled records beyond RETAINED, in chunks (amortised cost). Groups with no live
   * member hold nothing back: like Kafka's retention, they lose what ages out meanwhile.
   */
  function trim(topic: string, partition: number): void {
    const part = topics.get(topic)?.[partition];
    if (part === undefined || part.records.length < 2 * RETAINED) return;
    let drop = end(part) - RETAINED;
    for (const group of groups.values()) {
      if (!group.members.some((m) => !m.stopped && m.opts.topics.includes(topic))) continue;
      drop = Math.min(drop, group.committed.get(tp(topic, partition)) ?? part.base);
    }
    if (drop > part.base) {
      part.records.splice(0, drop - part.base);
      part.base = drop;
    }
  }

  return {
    driver: "memory",
    async ensureTopics(specs) {
      for (const spec of specs) partitionsOf(spec.name, spec.partitions);
    },
    async publish(topic, records) {
      const parts = partitionsOf(topic);
      const timestamp = Date.now();
      for (const r of records) {
        const partition = partitionOf(r.key, parts.length);
        const part = parts[partition];
        if (part === undefined) throw new Error(`memory bus: no partition ${partition} in topic "${topic}"`);
        part.records.push({ topic, partition, offset: String(end(part)), key: r.key, value: r.value.slice(), headers: { ...r.headers }, timestamp });
        trim(topic, partition);
      }
      schedule();
    },
    async subscribe(opts): Promise<Subscription> {
      let group = groups.get(opts.groupId);
      if (group === undefined) groups.set(opts.groupId, (group = { committed: new Map(), busy: new Set(), members: [] }));
      const g = group;
      // A partition this group has no position in starts at its end now (or its beginning), and
      // that position holds from now on: as the Kafka driver commits it on subscribe.
      for (const topic of opts.topics) {
        partitionsOf(topic).forEach((part, partition) => {
          const key = tp(topic, partition);
          if (!g.committed.has(key)) g.committed.set(key, opts.fromBeginning === true ? part.base : end(part));
        });
      }
      const member: Member = { opts, stopped: false, inFlight: new Set() };
      g.members.push(member);
      schedule();
      return {
        async status(): Promise<PartitionLag[]> {
          const out: PartitionLag[] = [];
          for (const topic of opts.topics) {
            partitionsOf(topic).forEach((part, partition) => {
              if (owner(g, partition) !== member) return;
              const committed = Math.max(g.committed.get(tp(topic, partition)) ?? part.base, part.base);
              out.push({ topic, partition, committedOffset: committed, lag: end(part) - committed });
            });
          }
          return out;
        },
        async stop() {
          if (member.stopped) return;
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
