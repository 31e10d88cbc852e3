// `make bench`: the project's load generator. Starts the mesh (cluster mode on the real
// infrastructure by default, or --embedded), opens N WebSocket clients paired into direct
// conversations, sends at a fixed offered rate, and reports sent / acknowledged / delivered,
// end-to-end latency (sender's send -> recipient's frame) as an HDR histogram, split at the
// message's server_time (send -> stored, stored -> delivered), CPU, memory and waits for a core of
// every process, a progress line each second, a JSON result and an SVG chart under var/bench/ (with
// --timeline, a CSV of every measured message: when it was sent and how long it took).
// The main run at --rate comes first, after --main-warmup seconds at that rate; then a sweep of
// rates finds the highest one that keeps p99 <= 200 ms. `--repeat N` does all of it N times, each
// on a mesh of its own, and sums the runs up as medians (bench/repeats.ts). `--scenario group`
// runs the group scenario instead (bench/group.ts), `--scenario idle` idle connections and a
// reconnect storm (bench/idle.ts), `--scenario floor` what Kafka and Cassandra alone cost per
// message, with no mesh (bench/floor.ts).
import { timestampMs } from "@bufbuild/protobuf/wkt";
import * as hdr from "hdr-histogram-js";
import { Kafka, logLevel } from "kafkajs";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { startCluster, startEmbeddedProcess, stopCluster } from "../cmd/cluster.js";
import { DEV_JWT_SECRET, PUBLIC_PORT } from "../cmd/services.js";
import { mintToken } from "../cmd/token.js";
import { ChatSocket } from "../packages/client/src/websocket.js";
import { openCassandra } from "../packages/runtime/src/cassandra.js";
import { floorBench } from "./floor.js";
import { groupBench } from "./group.js";
import { idleBench } from "./idle.js";
import { cpuSecondsOf, machineNote, machineUsage, processLine, processPids, processReports, sampleAll, usage, type MachineUsage, type ProcessReport, type Snapshot } from "./procstat.js";
import { summarizeRepeats, type Spread } from "./repeats.js";
import { latencyChart, type Series } from "./svg.js";

const { values: args } = parseArgs({
  options: {
    clients: { type: "string" },
    rate: { type: "string", default: "1000" },
    duration: { type: "string", default: "30" },
    warmup: { type: "string", default: "5" },
    "main-warmup": { type: "string", default: "30" },
    sweep: { type: "string", default: "100,150,200,300,500,1000" },
    "sweep-duration": { type: "string", default: "15" },
    embedded: { type: "boolean", default: false },
    scenario: { type: "string", default: "direct" },
    members: { type: "string", default: "500" },
    "per-edge": { type: "string", default: "16000" },
    storm: { type: "string", default: "10000" },
    idle: { type: "string", default: "30" },
    "connect-rate": { type: "string", default: "300" },
    timeline: { type: "boolean", default: false },
    repeat: { type: "string", default: "1" },
  },
});
const CLIENTS = Number(args.clients ?? (args.scenario === "idle" ? 100_000 : 2000));
const PER_EDGE = Number(args["per-edge"]);
// Every port the mesh listens on stays below the kernel's ephemeral range (32768 and up), where a
// client socket of another process could already hold it.
const OFFSET = 6_000;
const P99_BOUND_MS = 200;
/** The message store's keyspace in cluster mode, emptied before each mesh starts (see startMesh). */
const BENCH_KEYSPACE = "chat_bench";
/** Rate of the unmeasured first message of every client (see main). */
const PRIME_RATE = 200;

interface RunResult {
  offeredRate: number;
  durationS: number;
  sent: number;
  acknowledged: number;
  delivered: number;
  achievedSendRate: number;
  deliveryRate: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  ackLatencyMs: { p50: number; p99: number };
  /**
   * The end-to-end latency split at the message's server_time (when the store took it, after the
   * retry lookup and before its writes; same machine, so the same clock, at millisecond grain):
   * send -> stored covers the edge and the store's queueing, stored -> delivered the writes, Kafka,
   * routing and the edge's Deliver.
   */
  stagesMs: { sendToStored: { p50: number; p99: number }; storedToDelivered: { p50: number; p99: number } };
  /** CPU, memory and, where the kernel keeps schedstat, how long each process waited for a core (procstat.ts CoreWait). */
  processes: Record<string, ProcessReport>;
  /**
   * CPU of the mesh and its infrastructure (every process but the load generator) per message
   * delivered in the measured window, ms: what a message costs, steadier than latency on a machine
   * whose other tenants come and go.
   */
  cpuMsPerMessage: number;
  /** The whole machine over the measured window, in percent of all cores: busy, and stolen by the hypervisor. */
  machineCpu: MachineUsage | undefined;
  chart: [number, number][];
}

const log = (line: string) => process.stdout.write(`${line}\n`);


/** A delivered bench message: its text, when it arrived (performance.now()) and its server_time (epoch ms). */
type Delivery = (text: string, at: number, serverTimeMs: number) => void;

async function openClients(url: string): Promise<{ sockets: ChatSocket[]; onDelivery: (fn: Delivery) => void }> {
  let deliver: Delivery = () => undefined;
  const sockets: ChatSocket[] = [];
  for (let i = 0; i < CLIENTS; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, CLIENTS - i) }, async (_, k) => {
        const n = i + k;
        return ChatSocket.connect({
          url,
          token: await mintToken({ JWT_HS256_SECRET: DEV_JWT_SECRET }, `bench-${Math.floor(n / 2)}-${n % 2 === 0 ? "a" : "b"}`),
          deviceId: "bench",
          localAddress: `127.0.0.${1 + (n % 8)}`,
          onEvent: (event, at) => {
            const m = event.kind.case === "message" ? event.kind.value.message : undefined;
            if (m?.content.case === "text") deliver(m.content.value, at, m.serverTime === undefined ? Number.NaN : timestampMs(m.serverTime));
          },
        });
      }),
    );
    sockets.push(...batch);
  }
  return { sockets, onDelivery: (fn) => (deliver = fn) };
}

/**
 * One measured message of the main run: when it was sent (epoch ms), its end-to-end latency and its
 * send -> stored part (ms; NaN without server_time). `--timeline` writes them as CSV, to line the
 * slow ones up with other processes' logs (garbage collection pauses, say) by the clock.
 */
type TimelineRow = [sentAtMs: number, latencyMs: number, sendToStoredMs: number];

async function runAt(rate: number, durationS: number, warmupS: number, sockets: ChatSocket[], conversations: string[], setDelivery: (fn: Delivery) => void, pids: Record<string, number>, tag: string, timeline?: TimelineRow[]): Promise<RunResult> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const acks = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const toStored = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const fromStored = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const sentAt = new Map<number, number>();
  let sent = 0;
  let acknowledged = 0;
  let delivered = 0;
  let measuredFrom = Number.POSITIVE_INFINITY;
  setDelivery((text, at, serverTimeMs) => {
    if (!text.startsWith(tag)) return;
    const id = Number(text.slice(tag.length));
    const t = sentAt.get(id);
    if (t === undefined) return;
    sentAt.delete(id);
    delivered++;
    if (t < measuredFrom) return;
    histogram.recordValue(Math.max(1, Math.round((at - t) * 1000)));
    // server_time on the timeline of performance.now() (the processes share the machine's clock).
    const stored = serverTimeMs - performance.timeOrigin;
    timeline?.push([Math.round((performance.timeOrigin + t) * 10) / 10, Math.round((at - t) * 10) / 10, Math.round((stored - t) * 10) / 10]);
    if (Number.isNaN(serverTimeMs)) return;
    toStored.recordValue(Math.max(1, Math.round((stored - t) * 1000)));
    fromStored.recordValue(Math.max(1, Math.round((at - stored) * 1000)));
  });
  const pairs = conversations.length;
  const start = performance.now();
  const end = start + (warmupS + durationS) * 1000;
  measuredFrom = start + warmupS * 1000;
  let before: Snapshot | undefined;
  let measuredSent = 0;
  let progress = start;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (before === undefined && now >= measuredFrom) before = sampleAll(pids);
      if (now >= end) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor(((now - start) / 1000) * rate) - sent;
      for (let i = 0; i < due; i++) {
        const id = sent++;
        const pair = id % pairs;
        const fromB = Math.floor(id / pairs) % 2 === 1;
        const socket = sockets[2 * pair + (fromB ? 1 : 0)];
        if (socket === undefined) continue;
        const t = performance.now();
        if (t >= measuredFrom) measuredSent++;
        sentAt.set(id, t);
        socket.call("sendMessage", { conversationId: conversations[pair] ?? "", clientMsgId: `${tag}${id}`, text: `${tag}${id}`, firstAttempt: true }).then(
          () => {
            acknowledged++;
            if (t >= measuredFrom) acks.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
          },
          () => undefined,
        );
      }
      if (now - progress >= 1000) {
        progress = now;
        const h = histogram.totalCount > 0 ? ` p50 ${(histogram.getValueAtPercentile(50) / 1000).toFixed(1)} ms p99 ${(histogram.getValueAtPercentile(99) / 1000).toFixed(1)} ms` : "";
        log(`[${tag}] ${((now - start) / 1000).toFixed(0)}s offered ${rate}/s sent ${sent} acked ${acknowledged} delivered ${delivered}${h}`);
      }
    }, 2);
  });
  const after = sampleAll(pids);
  const from = before ?? after;
  // Let the backlog drain before the next run starts (an overloaded run must not skew the next one).
  const drainUntil = performance.now() + 30_000;
  while (sentAt.size > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
  const ms = (us: number) => Math.round(us) / 1000;
  const used = usage(from, after, durationS);
  const processes = processReports(used);
  const systemCpuSeconds = cpuSecondsOf(used, (name) => name !== "loadgen");
  const chart: [number, number][] = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99].map((p) => [p, ms(histogram.getValueAtPercentile(p))]);
  return {
    offeredRate: rate,
    durationS,
    sent,
    acknowledged,
    delivered,
    achievedSendRate: Math.round(measuredSent / durationS),
    deliveryRate: Math.round(histogram.totalCount / durationS),
    latencyMs: {
      p50: ms(histogram.getValueAtPercentile(50)),
      p90: ms(histogram.getValueAtPercentile(90)),
      p99: ms(histogram.getValueAtPercentile(99)),
      p999: ms(histogram.getValueAtPercentile(99.9)),
      max: ms(histogram.maxValue),
      mean: ms(histogram.mean),
    },
    ackLatencyMs: { p50: ms(acks.getValueAtPercentile(50)), p99: ms(acks.getValueAtPercentile(99)) },
    stagesMs: {
      sendToStored: { p50: ms(toStored.getValueAtPercentile(50)), p99: ms(toStored.getValueAtPercentile(99)) },
      storedToDelivered: { p50: ms(fromStored.getValueAtPercentile(50)), p99: ms(fromStored.getValueAtPercentile(99)) },
    },
    processes,
    cpuMsPerMessage: histogram.totalCount === 0 ? 0 : Math.round((systemCpuSeconds / histogram.totalCount) * 1e6) / 1e3,
    machineCpu: machineUsage(from, after),
    chart,
  };
}

/** The direct scenario's result of one mesh: what `make bench` writes to var/bench/<mode>-<time>.json. */
interface DirectResult {
  mode: string;
  machine: string;
  clients: number;
  command: string;
  at: string;
  prime: RunResult;
  main: RunResult;
  sweep: RunResult[];
  highestRateWithP99Under200ms: number;
}

type Mesh = Awaited<ReturnType<typeof startCluster>>;

async function main(): Promise<void> {
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB`;
  const mode = args.embedded ? "embedded" : "cluster";
  const repeat = Number(args.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat ${args.repeat}: a whole number of runs, 1 or more`);
  if (repeat > 1 && args.scenario !== "direct") throw new Error(`--repeat is for the direct scenario (each repeat on a mesh of its own), not --scenario ${args.scenario}`);
  log(args.scenario === "group" ? `bench: group of ${args.members}, ${mode} mode, machine ${machine}` : `bench: ${args.scenario} scenario, ${mode} mode, ${CLIENTS} clients, machine ${machine}`);
  if (args.scenario === "floor") {
    await floorScenario(machine);
    return;
  }
  let mesh: Mesh | undefined;
  // Interrupted (Ctrl-C, a timeout): the mesh goes too, not left running.
  const interrupted = (signal: NodeJS.Signals) => {
    log(`bench: ${signal}; stopping the mesh`);
    void (mesh === undefined ? Promise.resolve() : stopCluster(mesh)).finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  const url = `ws://127.0.0.1:${PUBLIC_PORT + OFFSET}/ws`;
  if (args.scenario !== "direct") {
    mesh = await startMesh(mode);
    try {
      if (args.scenario === "group") await groupScenario(url, processPids(mesh), mode, machine);
      else if (args.scenario === "idle") await idleScenario(mesh, mode, machine);
      else throw new Error(`unknown --scenario ${args.scenario} (direct, group, idle or floor)`);
    } finally {
      await stopCluster(mesh);
    }
    return;
  }
  // Each repeat starts a mesh of its own: a run's latency tends to stay where it starts (see the
  // README), so repeats on one mesh would hide most of the spread.
  const runs: { result: DirectResult; file: string }[] = [];
  for (let i = 1; i <= repeat; i++) {
    if (repeat > 1) log(`\nrepeat ${i} of ${repeat}`);
    mesh = await startMesh(mode);
    try {
      runs.push(await directScenario(url, mesh, mode, machine));
    } finally {
      await stopCluster(mesh);
      mesh = undefined;
    }
  }
  if (repeat > 1) writeRepeatSummary(runs, mode, machine);
}

async function startMesh(mode: string): Promise<Mesh> {
  const env = { JWT_HS256_SECRET: DEV_JWT_SECRET, LOG_LEVEL: process.env["LOG_LEVEL"] ?? "warn", WS_FRAMES_PER_SECOND: "1000", WS_FRAME_BURST: "1000", EDGE_DRAIN_MS: "0" };
  // The idle scenario: edges for the clients, and one more without any (its memory is the baseline).
  const edges = args.scenario === "idle" ? Math.ceil(CLIENTS / PER_EDGE) + 1 : 1;
  if (args.scenario === "idle" && mode === "embedded") throw new Error("--scenario idle spreads clients over several edge processes: cluster mode only");
  if (mode !== "embedded") await Promise.all([dropBenchKeyspace(), deleteBenchTopics()]);
  return mode === "embedded"
    ? await startEmbeddedProcess({ env, portOffset: OFFSET, logDir: "var/bench/logs", dataDir: `var/bench/data-${Date.now()}` })
    : await startCluster({
        env: { ...env, PG_URL: process.env["PG_URL"], REDIS_URL: process.env["REDIS_URL"], KAFKA_BROKERS: process.env["KAFKA_BROKERS"], CASSANDRA_CONTACT_POINTS: process.env["CASSANDRA_CONTACT_POINTS"], CASSANDRA_LOCAL_DC: process.env["CASSANDRA_LOCAL_DC"], CASSANDRA_KEYSPACE: BENCH_KEYSPACE },
        portOffset: OFFSET,
        logDir: "var/bench/logs",
        // A namespace of its own per run: nothing left over by an earlier (interrupted) run is replayed.
        busNamespace: `bench-${Date.now().toString(36)}.`,
        edges,
      });
}

/**
 * Each mesh starts on an empty message-store keyspace (its migrations create it again), as it starts
 * on a Kafka namespace of its own: otherwise what the earlier runs on this machine left behind grows
 * without end (2.4 GB here), and Cassandra compacts it in the background at random moments of
 * later runs (one compaction of 52 MB of them took 12 s, Cassandra at 53% of a core instead of 22%).
 * Flushes and compactions of the run's own writes still happen, and are measured like the rest.
 */
async function dropBenchKeyspace(): Promise<void> {
  const contactPoints = process.env["CASSANDRA_CONTACT_POINTS"];
  const localDataCenter = process.env["CASSANDRA_LOCAL_DC"];
  if (contactPoints === undefined || localDataCenter === undefined) throw new Error("cluster mode needs CASSANDRA_CONTACT_POINTS and CASSANDRA_LOCAL_DC (source infra/env.sh)");
  const session = await openCassandra({ contactPoints: contactPoints.split(","), localDataCenter, keyspace: BENCH_KEYSPACE });
  try {
    await session.client.execute(`DROP KEYSPACE IF EXISTS ${BENCH_KEYSPACE}`);
  } finally {
    await session.close();
  }
}

/**
 * And on a Kafka without the topics and consumer groups of earlier meshes (every name the bench
 * makes starts with "bench-"): each mesh made five topics of six partitions that stayed behind,
 * and with 130 of them (26 meshes of one afternoon) the last four runs at 1,000 msg/s had p50
 * 12.3-13.6 ms and p99 41-49 ms, against 11.6-12.0 and 30-33 ms in the next two once they were
 * deleted.
 */
async function deleteBenchTopics(): Promise<void> {
  const brokers = process.env["KAFKA_BROKERS"];
  if (brokers === undefined) throw new Error("cluster mode needs KAFKA_BROKERS (source infra/env.sh)");
  const admin = new Kafka({ clientId: "bench", brokers: brokers.split(","), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith("bench-"));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 60_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith("bench-"));
    // A group that still has members (a run stopped within its session timeout) stays: it is small.
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

async function idleScenario(mesh: Mesh, mode: string, machine: string): Promise<void> {
  const r = await idleBench({ mesh, clients: CLIENTS, perEdge: PER_EDGE, storm: Number(args.storm), idleS: Number(args.idle), connectRate: Number(args["connect-rate"]), portOffset: OFFSET, pids: processPids(mesh), log });
  const result = { scenario: "idle", mode, machine, command: commandLine(), at: new Date().toISOString(), ...r };
  mkdirSync("var/bench", { recursive: true });
  const file = `var/bench/idle-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
  writeFileSync(file, JSON.stringify(result, null, 2));
  log(`  wrote ${file}`);
}

/** One run of the direct scenario on `mesh`: its result, also written to `file` (and an SVG beside it). */
async function directScenario(url: string, mesh: Mesh, mode: string, machine: string): Promise<{ result: DirectResult; file: string }> {
  const t0 = performance.now();
  const { sockets, onDelivery } = await openClients(url);
  log(`connected ${sockets.length} clients in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const conversations: string[] = [];
    for (let i = 0; i + 1 < sockets.length; i += 2) {
      const r = await sockets[i]?.call("getOrCreateDirectConversation", { peerId: `bench-${i / 2}-b` });
      conversations.push(r?.conversation?.conversationId ?? "");
    }
    const pids = processPids(mesh);
    const runId = Date.now().toString(36);
    // Every client sends one message first, unmeasured: a conversation's first message pays for
    // what the store and routing then keep (memberships, the conversation's head), and the runs
    // that follow measure a running system, not the first minute after a restart.
    const prime = await runAt(PRIME_RATE, (2 * conversations.length) / PRIME_RATE, 0, sockets, conversations, onDelivery, pids, `${runId}p:`);
    log(`primed: each client's first message (cold caches) at ${PRIME_RATE}/s: p50 ${prime.latencyMs.p50} ms p99 ${prime.latencyMs.p99} ms`);
    // The main run goes first, after a warm-up of its own at its rate (--main-warmup): a window
    // measured soon after the mesh starts, or soon after an overloaded rate, measures that, not the
    // running system (see the README). Then the sweep, lowest rate up, stopping at the first rate
    // past the bound, so only its last step can be an overload and nothing measured follows it.
    const timeline: TimelineRow[] | undefined = args.timeline ? [] : undefined;
    const main_ = await runAt(Number(args.rate), Number(args.duration), Number(args["main-warmup"]), sockets, conversations, onDelivery, pids, `${runId}m:`, timeline);
    log(`main ${main_.offeredRate}/s: delivered ${main_.deliveryRate}/s p50 ${main_.latencyMs.p50} ms p99 ${main_.latencyMs.p99} ms, ${main_.cpuMsPerMessage} ms cpu/message, ${machineNote(main_.machineCpu)}`);
    const sweep: RunResult[] = [];
    for (const rate of (args.sweep ?? "").split(",").filter((s) => s !== "").map(Number)) {
      const r = await runAt(rate, Number(args["sweep-duration"]), Number(args.warmup), sockets, conversations, onDelivery, pids, `${runId}s${rate}:`);
      sweep.push(r);
      log(`sweep ${rate}/s: delivered ${r.deliveryRate}/s p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms, ${r.cpuMsPerMessage} ms cpu/message, ${machineNote(r.machineCpu)}`);
      if (r.latencyMs.p99 > P99_BOUND_MS) break;
    }
    const best = highestPassingRate(sweep);
    const result: DirectResult = { mode, machine, clients: sockets.length, command: commandLine(), at: new Date().toISOString(), prime, main: main_, sweep, highestRateWithP99Under200ms: best };
    mkdirSync("var/bench", { recursive: true });
    const base = `var/bench/${mode}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    writeFileSync(`${base}.json`, JSON.stringify(result, null, 2));
    if (timeline !== undefined) writeFileSync(`${base}.timeline.csv`, ["sent_at_ms,latency_ms,send_to_stored_ms", ...timeline.map((r) => r.join(","))].join("\n") + "\n");
    const series: Series[] = [{ label: `${main_.offeredRate}/s, ${sockets.length} clients`, points: main_.chart }, ...sweep.map((r) => ({ label: `${r.offeredRate}/s`, points: r.chart }))];
    writeFileSync(`${base}.svg`, latencyChart(`end-to-end latency, ${mode} mode, ${machine}`, series));
    log(`\nresult (${mode}, ${sockets.length} clients, ${machine})`);
    log(`  offered ${main_.offeredRate}/s for ${main_.durationS}s: sent ${main_.sent} acked ${main_.acknowledged} delivered ${main_.delivered}`);
    log(`  end-to-end latency ms: p50 ${main_.latencyMs.p50} p90 ${main_.latencyMs.p90} p99 ${main_.latencyMs.p99} p99.9 ${main_.latencyMs.p999} max ${main_.latencyMs.max}`);
    log(`  send->ack ms: p50 ${main_.ackLatencyMs.p50} p99 ${main_.ackLatencyMs.p99}`);
    const { sendToStored, storedToDelivered } = main_.stagesMs;
    log(`  split at server_time, ms: send->stored p50 ${sendToStored.p50} p99 ${sendToStored.p99}, stored->delivered p50 ${storedToDelivered.p50} p99 ${storedToDelivered.p99}`);
    for (const [name, p] of Object.entries(main_.processes)) log(processLine(name, p));
    log(`  mesh and infrastructure: ${main_.cpuMsPerMessage} ms cpu/message (the load generator left out)`);
    log(`  ${machineNote(main_.machineCpu)}`);
    log(`  highest delivered rate with p99 <= ${P99_BOUND_MS} ms: ${best}/s`);
    log(`  wrote ${base}.json and ${base}.svg${timeline === undefined ? "" : ` and ${base}.timeline.csv`}`);
    return { result, file: `${base}.json` };
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
  }
}

const commandLine = () => `make bench ARGS="${process.argv.slice(2).join(" ")}"`;

/** The highest delivered rate of a sweep whose p99 stayed within the bound with (nearly) everything delivered; 0 for none. */
const highestPassingRate = (sweep: RunResult[]): number =>
  sweep.filter((r) => r.latencyMs.p99 <= P99_BOUND_MS && r.delivered >= r.sent * 0.999).reduce((m, r) => Math.max(m, r.deliveryRate), 0);

/** The repeats of --repeat side by side, with their medians: var/bench/<mode>-<time>-repeats.json. */
function writeRepeatSummary(runs: { result: DirectResult; file: string }[], mode: string, machine: string): void {
  const summary = summarizeRepeats(runs.map(({ result: r }) => ({ main: r.main, sweep: r.sweep, highestRateWithP99Under200ms: r.highestRateWithP99Under200ms })));
  const file = `var/bench/${mode}-${new Date().toISOString().replace(/[:.]/g, "-")}-repeats.json`;
  writeFileSync(file, JSON.stringify({ mode, machine, command: commandLine(), at: new Date().toISOString(), runs: runs.map((r) => r.file), ...summary }, null, 2));
  const m = summary.main;
  const spread = (s: Spread, unit = "") => `${s.median}${unit} (${s.min}-${s.max})`;
  log(`\n${runs.length} repeats, each on a mesh of its own (${mode}, ${machine}): median (lowest-highest)`);
  log(`  ${summary.offeredRate}/s end-to-end latency ms: p50 ${spread(m.p50)} p90 ${spread(m.p90)} p99 ${spread(m.p99)} p99.9 ${spread(m.p999)}`);
  log(`  mesh and infrastructure: ${spread(m.cpuMsPerMessage)} ms cpu/message; machine busy ${spread(m.busyPercent, "%")} steal ${spread(m.stealPercent, "%")}`);
  for (const [rate, s] of Object.entries(summary.sweepP99)) log(`  sweep ${rate}/s p99 ms: ${spread(s)} in ${s.runs} of ${runs.length}`);
  log(`  highest delivered rate with p99 <= ${P99_BOUND_MS} ms: ${spread(summary.highestRateWithP99Under200ms, "/s")}`);
  log(`  wrote ${file}`);
}

async function floorScenario(machine: string): Promise<void> {
  const all = processPids([]);
  const pids = Object.fromEntries(Object.entries(all).filter(([name]) => ["loadgen", "cassandra", "kafka"].includes(name)));
  const steps = await floorBench({ rate: Number(args.rate), durationS: Number(args.duration), warmupS: Number(args.warmup), pids, log });
  const result = { scenario: "floor", machine, command: commandLine(), at: new Date().toISOString(), steps };
  mkdirSync("var/bench", { recursive: true });
  const file = `var/bench/floor-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
  writeFileSync(file, JSON.stringify(result, null, 2));
  log(`\nresult (floor: the infrastructure alone, ${machine})`);
  for (const s of steps) log(`  ${s.step.padEnd(16)} ${String(s.achievedRate).padStart(7)}/s  p50 ${s.latencyMs.p50} ms  p99 ${s.latencyMs.p99} ms  ${s.cpuMsPerMessage} ms cpu/message  (${Object.entries(s.cpuPercent).map(([k, v]) => `${k} ${v}%`).join(", ")}), ${machineNote(s.machineCpu)}`);
  log(`  wrote ${file}`);
}

async function groupScenario(url: string, pids: Record<string, number>, mode: string, machine: string): Promise<void> {
  const r = await groupBench({ url, members: Number(args.members), rate: Number(args.rate), durationS: Number(args.duration), warmupS: Number(args.warmup), pids, log });
  const result = { scenario: "group", mode, machine, command: commandLine(), at: new Date().toISOString(), ...r };
  mkdirSync("var/bench", { recursive: true });
  const base = `var/bench/group-${mode}-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 2));
  writeFileSync(`${base}.svg`, latencyChart(`latency to the last recipient, ${r.members}-member group, ${mode} mode, ${machine}`, [{ label: `${r.offeredRate} msg/s`, points: r.chart }]));
  log(`\nresult (group of ${r.members}, ${mode}, ${machine})`);
  log(`  offered ${r.offeredRate} msg/s for ${r.durationS}s: sent ${r.sent} acked ${r.acknowledged}, every recipient got ${r.completed}`);
  log(`  device deliveries at the clients: ${r.deliveriesPerSecond}/s`);
  log(`  latency to the last recipient ms: p50 ${r.lastRecipientLatencyMs.p50} p90 ${r.lastRecipientLatencyMs.p90} p99 ${r.lastRecipientLatencyMs.p99} max ${r.lastRecipientLatencyMs.max}`);
  log(`  latency of each delivery ms: p50 ${r.deliveryLatencyMs.p50} p99 ${r.deliveryLatencyMs.p99}`);
  log(`  send -> ack ms: p50 ${r.ackLatencyMs.p50} p99 ${r.ackLatencyMs.p99}`);
  log(`  CPU per delivery (mesh and infrastructure): ${r.cpuMicrosPerDelivery} µs`);
  for (const [name, p] of Object.entries(r.processes)) log(processLine(name, p));
  log(`  ${machineNote(r.machineCpu)}`);
  log(`  wrote ${base}.json and ${base}.svg`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
