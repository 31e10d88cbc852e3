// The idle scenario of `make bench` (--scenario idle): as many idle WebSocket clients as asked (up
// to 100,000), spread over several edge processes and load-generator workers (each process here may
// hold at most its file-descriptor limit, 20,000 on this machine, so one edge cannot take them all)
// and over several 127.0.0.x source addresses. Reports each edge's memory per idle connection (RSS
// and V8 heap, after minus before), the CPU the heartbeats cost while everyone idles, then a
// reconnect storm: some clients are cut off, their peers each send them one message, and they all
// reconnect at once and catch up with Sync; the time until all have resumed, and any loss.
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { ClusterProcess } from "../cmd/cluster.js";
import { PUBLIC_PORT } from "../cmd/services.js";
import type { WorkerCommand, WorkerReport } from "./idle-worker.js";
import { cpuSecondsOf, sample, sampleAll, usage } from "./procstat.js";

export interface IdleBenchOptions {
  mesh: ClusterProcess[];
  clients: number;
  /** Clients per edge (and per worker). */
  perEdge: number;
  /** Clients dropped and reconnected at once. */
  storm: number;
  /** New clients per second over all workers while connecting (arrivals, not a flood; the storm is the flood). */
  connectRate: number;
  /** Seconds of idling over which heartbeat CPU is measured. */
  idleS: number;
  portOffset: number;
  pids: Record<string, number>;
  log: (line: string) => void;
}

interface Mem {
  rss: number;
  heap: number;
}

interface EdgeMemory {
  edge: string;
  connections: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  heapBeforeMB: number;
  heapAfterMB: number;
  rssPerConnectionKB: number;
  heapPerConnectionKB: number;
}

const WORKER = fileURLToPath(new URL("./idle-worker.js", import.meta.url));
const SOURCES = 8;
/** How long the edges' memory is read before any client connects (the lowest reading is the baseline). */
const BASELINE_MS = 20_000;
/**
 * A pause before the idle period: registrations and the first heartbeats done, and each edge has
 * given back the memory the arrivals left (it checks every EDGE_MEMORY_TRIM_MS, 10 s, and trims
 * once its connection count held still between two checks), so its pause is not counted as
 * heartbeat CPU.
 */
const SETTLE_MS = 30_000;
const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
const kb = (bytes: number) => Math.round(bytes / 100) / 10;

/** V8 heap in use, from the process's /metrics (nodejs_heap_used_bytes). */
async function heapUsed(address: string): Promise<number> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const m = /^nodejs_heap_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
  if (m === null) throw new Error(`no nodejs_heap_used_bytes on ${address}/metrics`);
  return Number(m[1]);
}

class Worker {
  readonly child: ChildProcess;
  private readonly replies: WorkerReport[] = [];
  private waiting: ((r: WorkerReport) => void) | undefined;

  constructor(readonly index: number) {
    this.child = fork(WORKER, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (r: WorkerReport) => {
      if (this.waiting !== undefined) {
        const w = this.waiting;
        this.waiting = undefined;
        w(r);
      } else this.replies.push(r);
    });
  }

  async ask<T extends WorkerReport["type"]>(cmd: WorkerCommand, answer: T): Promise<Extract<WorkerReport, { type: T }>> {
    this.child.send(cmd);
    const r = this.replies.shift() ?? (await new Promise<WorkerReport>((resolve, reject) => {
      this.waiting = resolve;
      this.child.once("exit", (code) => reject(new Error(`idle worker ${this.index} exited with ${code}`)));
    }));
    if (r.type !== answer) throw new Error(`worker ${this.index} answered ${r.type}, not ${answer}`);
    return r as Extract<WorkerReport, { type: T }>;
  }
}

export async function idleBench(o: IdleBenchOptions) {
  // Every edge but the last takes clients; the last takes none: what an edge's memory does
  // meanwhile without connections (code warming up, caches, the runtime) is taken off the others'.
  const all = o.mesh.filter((p) => p.name === "edge").sort((a, b) => a.instance - b.instance);
  const control = all.at(-1);
  const edges = all.slice(0, -1);
  if (control === undefined || edges.length === 0) throw new Error("the idle scenario needs at least two edges (one without clients)");
  const workers = edges.map((_, i) => new Worker(i));
  // The load generator's own CPU: its workers, one line each.
  const pids: Record<string, number> = { ...o.pids, ...Object.fromEntries(workers.map((w, i) => [`loadgen-${i}`, w.child.pid ?? 0])) };
  const edgeName = (p: ClusterProcess) => (p.instance === 0 ? "edge" : `edge-${p.instance}`);
  try {
    const readMemory = () => Promise.all([...edges, control].map(async (e) => ({ rss: sample(e.child.pid ?? 0)?.rssBytes ?? 0, heap: await heapUsed(e.address) })));
    const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS));
    /** Memory read every 2 s for `ms`, the lowest reading of each edge kept: what it holds, not garbage a collection has yet to take. */
    const lowestOver = async (ms: number): Promise<Mem[]> => {
      let low = await readMemory();
      for (const end = Date.now() + ms; Date.now() < end; ) {
        await new Promise((r) => setTimeout(r, 2_000));
        const now = await readMemory();
        low = low.map((a, i) => ({ rss: Math.min(a.rss, now[i]?.rss ?? a.rss), heap: Math.min(a.heap, now[i]?.heap ?? a.heap) }));
      }
      return low;
    };
    const before = await lowestOver(BASELINE_MS);

    // Connect: worker i holds clients [i*perEdge, ...) on edge i; all workers at once.
    const t0 = performance.now();
    const progress = setInterval(() => o.log(`[idle] connecting: ${((performance.now() - t0) / 1000).toFixed(0)} s`), 5_000);
    const connected = await Promise.all(
      workers.map((w, i) => {
        const from = i * o.perEdge;
        const url = `ws://127.0.0.1:${PUBLIC_PORT + o.portOffset + (edges[i]?.instance ?? 0)}/ws`;
        return w.ask({ type: "connect", url, from, to: Math.min(o.clients, from + o.perEdge), sources: SOURCES, perSecond: o.connectRate / workers.length }, "connected");
      }),
    );
    clearInterval(progress);
    const total = connected.reduce((n, c) => n + c.connected, 0);
    const failed = connected.reduce((n, c) => n + c.failed, 0);
    const serverCloses = connected.reduce((n, c) => n + c.serverCloses, 0);
    const connectS = (performance.now() - t0) / 1000;
    o.log(`connected ${total} of ${o.clients} clients in ${connectS.toFixed(1)} s over ${edges.length} edges (and one without clients)${failed > 0 ? ` (${failed} turned away at first and connected later: ${connected.find((c) => c.firstError)?.firstError ?? ""})` : ""}; ${serverCloses} closed by the server and connected again`);

    // Idle: what the heartbeats cost (edge pings and pongs, the batched session and presence refreshes).
    await settle();
    const idleBefore = sampleAll(pids);
    const after = await lowestOver(o.idleS * 1000);
    const idleAfter = sampleAll(pids);
    const idle = usage(idleBefore, idleAfter, o.idleS);
    const c = edges.length;
    const drift = { rss: (after[c]?.rss ?? 0) - (before[c]?.rss ?? 0), heap: (after[c]?.heap ?? 0) - (before[c]?.heap ?? 0) };
    const memory: EdgeMemory[] = edges.map((e, i) => {
      const [b0, a] = [before[i], after[i]].map((x) => x ?? { rss: 0, heap: 0 }) as [Mem, Mem];
      const b = { rss: b0.rss + drift.rss, heap: b0.heap + drift.heap };
      const n = connected[i]?.connected ?? 0;
      return {
        edge: edgeName(e),
        connections: n,
        rssBeforeMB: mb(b.rss),
        rssAfterMB: mb(a.rss),
        heapBeforeMB: mb(b.heap),
        heapAfterMB: mb(a.heap),
        rssPerConnectionKB: n === 0 ? 0 : kb((a.rss - b.rss) / n),
        heapPerConnectionKB: n === 0 ? 0 : kb((a.heap - b.heap) / n),
      };
    });
    const sum = (f: (m: EdgeMemory) => number) => memory.reduce((s, m) => s + f(m), 0);
    const perConnection = {
      rssKB: kb(sum((m) => m.rssPerConnectionKB * m.connections * 1000) / total),
      heapKB: kb(sum((m) => m.heapPerConnectionKB * m.connections * 1000) / total),
      rssMaxEdgeKB: Math.max(...memory.map((m) => m.rssPerConnectionKB)),
    };
    const edgeCpuSeconds = cpuSecondsOf(idle, (name) => name === "edge" || name.startsWith("edge-"));
    const heartbeat = {
      edgesCpuPercent: Math.round((edgeCpuSeconds / o.idleS) * 1000) / 10,
      edgeCpuMicrosPerConnectionPerSecond: total === 0 ? 0 : Math.round(((edgeCpuSeconds / o.idleS) * 1e6 * 100) / total) / 100,
      connectionCpuPercent: idle["connection"]?.cpuPercent ?? 0,
      presenceCpuPercent: idle["presence"]?.cpuPercent ?? 0,
      redisCpuPercent: idle["redis"]?.cpuPercent ?? 0,
    };
    o.log(`edge memory per idle connection: RSS ${perConnection.rssKB} KB (the worst edge ${perConnection.rssMaxEdgeKB} KB), V8 heap ${perConnection.heapKB} KB (lowest reading while idle minus lowest before connecting, less what an edge without clients grew meanwhile: RSS ${mb(drift.rss)} MB, heap ${mb(drift.heap)} MB; ${total} connections)`);
    for (const m of memory) o.log(`  ${m.edge.padEnd(8)} ${String(m.connections).padStart(6)} conns  RSS ${m.rssBeforeMB} -> ${m.rssAfterMB} MB (${m.rssPerConnectionKB} KB/conn)  heap ${m.heapBeforeMB} -> ${m.heapAfterMB} MB (${m.heapPerConnectionKB} KB/conn)`);
    o.log(`heartbeat CPU while idle (${o.idleS} s): edges ${heartbeat.edgesCpuPercent}% of a core (${heartbeat.edgeCpuMicrosPerConnectionPerSecond} µs per connection per second), connection ${heartbeat.connectionCpuPercent}%, presence ${heartbeat.presenceCpuPercent}%, redis ${heartbeat.redisCpuPercent}%`);

    const result = {
      clients: o.clients,
      connected: total,
      turnedAwayAtFirst: failed,
      closedByServerAndReconnected: serverCloses,
      connectSeconds: Math.round(connectS * 10) / 10,
      connectRatePerSecond: o.connectRate,
      edges: edges.length + 1,
      sourceAddresses: SOURCES,
      memory: { ...perConnection, controlEdgeDriftMB: { rss: mb(drift.rss), heap: mb(drift.heap) }, perEdge: memory },
      heartbeat: { idleSeconds: o.idleS, ...heartbeat, processes: Object.fromEntries(Object.entries(idle).map(([k, u]) => [k, { cpuPercent: u.cpuPercent, rssMB: u.rssMB }])) },
    };
    if (o.storm === 0) return result;
    // The reconnect storm.
    const step = Math.max(2, Math.floor(total / o.storm));
    const prepared = await Promise.all(workers.map((w) => w.ask({ type: "storm-prepare", step, count: o.storm }, "prepared")));
    const stormSize = prepared.reduce((n, p) => n + p.storm, 0);
    await Promise.all(workers.map((w) => w.ask({ type: "storm-drop" }, "dropped")));
    o.log(`storm: dropped ${stormSize} clients; their peers send each one message while they are away`);
    const sent = await Promise.all(workers.map((w) => w.ask({ type: "storm-send" }, "sent")));
    const messages = sent.reduce((n, s) => n + s.sent, 0);
    await new Promise((r) => setTimeout(r, 1_000));
    const stormStart = Date.now();
    const stormBefore = sampleAll(pids);
    const resumed = await Promise.all(workers.map((w) => w.ask({ type: "storm-reconnect" }, "resumed")));
    const stormCpu = usage(stormBefore, sampleAll(pids), (Date.now() - stormStart) / 1000);
    const storm = {
      clients: stormSize,
      messagesSentWhileAway: messages,
      sendFailures: sent.reduce((n, s) => n + s.failed, 0),
      resumed: resumed.reduce((n, r) => n + r.resumed, 0),
      failedToResume: resumed.reduce((n, r) => n + r.failed, 0),
      retries: resumed.reduce((n, r) => n + r.retries, 0),
      secondsUntilAllResumed: Math.round((Math.max(...resumed.map((r) => r.finishedAt)) - stormStart) / 100) / 10,
      lost: resumed.reduce((n, r) => n + r.missing, 0),
      duplicates: resumed.reduce((n, r) => n + r.duplicates, 0),
      firstError: resumed.find((r) => r.firstError)?.firstError,
      cpuPercent: Object.fromEntries(Object.entries(stormCpu).map(([k, u]) => [k, u.cpuPercent])),
    };
    o.log(`storm CPU (% of a core): ${Object.entries(storm.cpuPercent).map(([k, v]) => `${k} ${v}`).join(", ")}`);
    o.log(`storm: ${storm.resumed} of ${storm.clients} resumed (connected again and synced) in ${storm.secondsUntilAllResumed} s; lost ${storm.lost}, duplicated ${storm.duplicates}, failed ${storm.failedToResume}, ${storm.retries} retries${storm.firstError ? ` (first refusal: ${storm.firstError})` : ""}`);
    return { ...result, storm };
  } finally {
    await Promise.all(
      workers.map(async (w) => {
        if (w.child.exitCode !== null) return;
        const exited = once(w.child, "exit");
        w.child.send({ type: "stop" } satisfies WorkerCommand);
        const timer = setTimeout(() => w.child.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
