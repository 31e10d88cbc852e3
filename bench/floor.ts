// The floor scenario of `make bench` (--scenario floor): what the infrastructure alone costs per
// message at the offered rate, with no mesh running: the work the send path cannot do without,
// issued from this one process with the project's own drivers. Four steps, one after another:
//   cassandra-write  one prepared INSERT of a message row per message, as the message store writes
//                    it (the replica holding the conversation's seq lease writes plainly);
//   cassandra-lwt    the same row as INSERT ... IF NOT EXISTS: what a guard per message costs (the
//                    store's design before its seq leases);
//   kafka            one record published (the kafka bus driver, acks=all, idempotent) and
//                    consumed by a consumer group, latency from publish to the handler;
//   send-path        per message: the INSERT, then the record, consumed: the cheapest
//                    path from "accepted" to "routing has it" with the named infrastructure.
// For each: achieved rate, latency p50/p99, CPU of Cassandra, Kafka and this process, and the
// CPU per message (all three together). On a machine whose cores the mesh must share with the
// infrastructure, this is the part of the budget the services can never get back.
import * as hdr from "hdr-histogram-js";
import cassandra from "cassandra-driver";
import { openBus } from "../packages/runtime/src/bus/index.js";
import { openCassandra } from "../packages/runtime/src/cassandra.js";
import { cpuSecondsOf, machineNote, machineUsage, sampleAll, usage, type MachineUsage, type Snapshot } from "./procstat.js";

export interface FloorOptions {
  rate: number;
  durationS: number;
  warmupS: number;
  /** This process, cassandra and kafka (bench/procstat.ts processPids). */
  pids: Record<string, number>;
  log: (line: string) => void;
}

export interface FloorStep {
  step: string;
  offeredRate: number;
  durationS: number;
  done: number;
  achievedRate: number;
  latencyMs: { p50: number; p99: number; max: number };
  cpuPercent: Record<string, number>;
  /** Cassandra, Kafka and this process together, per message done in the measured window. */
  cpuMsPerMessage: number;
  /** The whole machine over the measured window (see machineUsage). */
  machineCpu: MachineUsage | undefined;
}

const CONVERSATIONS = 1000;
const { Long } = cassandra.types;
const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const ms = (us: number) => Math.round(us) / 1000;
const round1 = (n: number) => Math.round(n * 10) / 10;

/**
 * Runs `op` at `rate` per second (paced every 5 ms) for warmup + duration seconds; counts and
 * times only the ops started in the measured window, and samples CPU over that window.
 */
async function paced(name: string, o: FloorOptions, op: (i: number) => Promise<unknown>, completion?: Map<number, (at: number) => void>): Promise<FloorStep> {
  const h = histogram();
  const start = performance.now();
  const from = start + o.warmupS * 1000;
  const until = from + o.durationS * 1000;
  let issued = 0;
  let done = 0;
  let failed = 0;
  let before: Snapshot | undefined;
  let after: Snapshot | undefined;
  const inFlight = new Set<Promise<unknown>>();
  const record = (t0: number, at: number) => {
    if (t0 < from || t0 >= until) return;
    done++;
    h.recordValue(Math.max(1, Math.round((at - t0) * 1000)));
  };
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (before === undefined && now >= from) before = sampleAll(o.pids);
      if (now >= until) {
        after = sampleAll(o.pids);
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor(((now - start) / 1000) * o.rate) - issued;
      for (let k = 0; k < due; k++) {
        const i = issued++;
        const t0 = performance.now();
        // With a completion map the op is done when something else reports it (a consumer).
        if (completion !== undefined) completion.set(i, (at) => record(t0, at));
        const p = op(i).then(
          () => completion === undefined && record(t0, performance.now()),
          () => void failed++,
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
    }, 5);
  });
  await Promise.all(inFlight);
  if (completion !== undefined) {
    const deadline = performance.now() + 10_000;
    while (completion.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    completion.clear();
  }
  const none: Snapshot = { processes: {}, machine: undefined };
  const cpu = usage(before ?? none, after ?? none, o.durationS);
  const cpuSeconds = cpuSecondsOf(cpu);
  const step: FloorStep = {
    step: name,
    offeredRate: o.rate,
    durationS: o.durationS,
    done,
    achievedRate: round1(done / o.durationS),
    latencyMs: { p50: ms(h.getValueAtPercentile(50)), p99: ms(h.getValueAtPercentile(99)), max: ms(h.maxValue) },
    cpuPercent: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v.cpuPercent])),
    cpuMsPerMessage: done === 0 ? 0 : Math.round((cpuSeconds / done) * 1e6) / 1e3,
    machineCpu: machineUsage(before ?? none, after ?? none),
  };
  const cpuLine = Object.entries(step.cpuPercent).map(([k, v]) => `${k} ${v}%`).join(", ");
  o.log(`[floor] ${name}: ${step.achievedRate}/s of ${o.rate}/s${failed > 0 ? ` (${failed} failed)` : ""}, p50 ${step.latencyMs.p50} ms p99 ${step.latencyMs.p99} ms; cpu ${cpuLine}; ${step.cpuMsPerMessage} ms cpu per message; ${machineNote(step.machineCpu)}`);
  return step;
}

export async function floorBench(o: FloorOptions): Promise<FloorStep[]> {
  const env = (name: string) => {
    const v = process.env[name];
    if (v === undefined || v === "") throw new Error(`--scenario floor needs ${name} (source infra/env.sh)`);
    return v;
  };
  const run = Date.now().toString(36);
  const session = await openCassandra({ contactPoints: env("CASSANDRA_CONTACT_POINTS").split(","), localDataCenter: env("CASSANDRA_LOCAL_DC"), keyspace: "chat_bench_floor" });
  const bus = openBus("kafka", { brokers: env("KAFKA_BROKERS").split(","), clientId: "bench-floor" });
  try {
    // The shape of message-store's messages table, in a keyspace of its own.
    await session.client.execute(`CREATE TABLE IF NOT EXISTS messages (
      conversation_id text, bucket int, seq bigint, message_id text, client_msg_id text, sender_id text,
      sender_device_id text, server_time timestamp, content blob, PRIMARY KEY ((conversation_id, bucket), seq))`);
    const content = Buffer.alloc(60, 120);
    const seqs = new Map<string, number>();
    const insert = (guarded: boolean, prefix: string) => (i: number) => {
      const conversationId = `${prefix}-${run}-${i % CONVERSATIONS}`;
      const seq = (seqs.get(conversationId) ?? 0) + 1;
      seqs.set(conversationId, seq);
      const q = `INSERT INTO messages (conversation_id, bucket, seq, message_id, client_msg_id, sender_id, sender_device_id, server_time, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)${guarded ? " IF NOT EXISTS" : ""}`;
      return session.client.execute(q, [conversationId, 0, Long.fromNumber(seq), crypto.randomUUID(), `c${i}`, "bench-a", "bench", new Date(), content], { prepare: true });
    };

    const topic = `bench-floor-${run}.messages`;
    await bus.ensureTopics([{ name: topic, partitions: 6 }]);
    const consumed = new Map<number, (at: number) => void>();
    const sub = await bus.subscribe({
      groupId: `bench-floor-${run}`,
      topics: [topic],
      handle: async (records) => {
        const at = performance.now();
        for (const r of records) {
          const i = Number(r.headers["i"]);
          consumed.get(i)?.(at);
          consumed.delete(i);
        }
      },
    });
    const publish = (i: number) => bus.publish(topic, [{ key: `c-${i % CONVERSATIONS}`, value: content, headers: { i: String(i) } }]);

    const steps: FloorStep[] = [];
    steps.push(await paced("cassandra-write", o, insert(false, "w")));
    steps.push(await paced("cassandra-lwt", o, insert(true, "g")));
    steps.push(await paced("kafka", o, publish, consumed));
    steps.push(
      await paced(
        "send-path",
        o,
        async (i) => {
          await insert(false, "s")(i);
          await publish(i);
        },
        consumed,
      ),
    );
    await sub.stop();
    return steps;
  } finally {
    await bus.close();
    await session.close();
  }
}
