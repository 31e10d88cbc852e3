// The group scenario of `make bench` (--scenario group): one group of --members members, each
// connected with one WebSocket device, messages sent into it at --rate per second by the members in
// turn. Reports device deliveries per second at the edge, end-to-end latency to the last recipient
// of each message (and of every single delivery), and CPU per delivery across the processes.
import * as hdr from "hdr-histogram-js";
import { DEV_JWT_SECRET } from "../cmd/services.js";
import { mintToken } from "../cmd/token.js";
import { RawSocket } from "./rawsocket.js";
import { cpuSecondsOf, machineUsage, processReports, sampleAll, usage, type MachineUsage, type ProcessReport, type Snapshot } from "./procstat.js";

export interface GroupBenchOptions {
  url: string;
  members: number;
  rate: number;
  durationS: number;
  warmupS: number;
  pids: Record<string, number>;
  log: (line: string) => void;
}

export interface GroupBenchResult {
  members: number;
  offeredRate: number;
  durationS: number;
  sent: number;
  acknowledged: number;
  /** Device deliveries counted at the clients during the measured window. */
  deliveries: number;
  deliveriesPerSecond: number;
  /** Messages whose every recipient got them. */
  completed: number;
  lastRecipientLatencyMs: { p50: number; p90: number; p99: number; max: number };
  deliveryLatencyMs: { p50: number; p99: number };
  /** Sender's send -> its acknowledgement (the message stored and MessageCreated published). */
  ackLatencyMs: { p50: number; p99: number };
  /** CPU of the mesh and the infrastructure (the load generator excluded) per device delivery. */
  cpuMicrosPerDelivery: number;
  processes: Record<string, ProcessReport>;
  /** The whole machine over the measured window (see machineUsage). */
  machineCpu: MachineUsage | undefined;
  chart: [number, number][];
}

const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const ms = (us: number) => Math.round(us) / 1000;

export async function groupBench(o: GroupBenchOptions): Promise<GroupBenchResult> {
  const run = Date.now().toString(36);
  // In the text only: the delivered frame carries client_msg_id too, and it must not match.
  const tag = `g${run}:`;
  const tagBytes = Buffer.from(tag);
  const lastRecipient = histogram();
  const perDelivery = histogram();
  const acks = histogram();
  const pending = new Map<number, { sentAt: number; left: number }>();
  let measuredFrom = Number.POSITIVE_INFINITY;
  let measuredUntil = Number.POSITIVE_INFINITY;
  let deliveries = 0;
  let completed = 0;
  const onMessage = (id: number, at: number) => {
    const p = pending.get(id);
    if (p === undefined) return;
    const measured = p.sentAt >= measuredFrom && p.sentAt < measuredUntil;
    if (at >= measuredFrom && at < measuredUntil) deliveries++;
    if (measured) perDelivery.recordValue(Math.max(1, Math.round((at - p.sentAt) * 1000)));
    if (--p.left > 0) return;
    pending.delete(id);
    completed++;
    if (measured) lastRecipient.recordValue(Math.max(1, Math.round((at - p.sentAt) * 1000)));
  };

  const sockets: RawSocket[] = [];
  const userOf = (n: number) => `bench-group-${n}`;
  const t0 = performance.now();
  for (let i = 0; i < o.members; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, o.members - i) }, async (_, k) =>
        RawSocket.connect({
          url: o.url,
          token: await mintToken({ JWT_HS256_SECRET: DEV_JWT_SECRET }, userOf(i + k)),
          deviceId: "bench",
          localAddress: `127.0.0.${1 + ((i + k) % 8)}`,
          // The bench's messages are spotted in the frame's bytes ("<tag><id>." in the text), not
          // decoded: the generator shares the 2 cores with the mesh it measures.
          onData: (data, at) => {
            const i = data.indexOf(tagBytes);
            if (i < 0) return false;
            const from = i + tagBytes.length;
            const end = data.indexOf(46 /* "." */, from);
            onMessage(Number(data.toString("latin1", from, end)), at);
            return true;
          },
        }),
      ),
    );
    sockets.push(...batch);
  }
  o.log(`connected ${sockets.length} members in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const owner = sockets[0];
  if (owner === undefined) throw new Error("no members");
  const created = await owner.call("createGroup", { title: "bench", memberIds: Array.from({ length: o.members - 1 }, (_, i) => userOf(i + 1)) });
  const conversationId = created.response.case === "createGroup" ? (created.response.value.conversation?.conversationId ?? "") : "";
  await new Promise((r) => setTimeout(r, 1000)); // the CREATED message reaches everyone first

  let sent = 0;
  let acknowledged = 0;
  const start = performance.now();
  measuredFrom = start + o.warmupS * 1000;
  measuredUntil = measuredFrom + o.durationS * 1000;
  let before: Snapshot | undefined;
  let progress = start;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (before === undefined && now >= measuredFrom) before = sampleAll(o.pids);
      if (now >= measuredUntil) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor(((now - start) / 1000) * o.rate) - sent;
      for (let i = 0; i < due; i++) {
        const id = sent++;
        const sender = sockets[id % sockets.length];
        if (sender === undefined) continue;
        const sentAt = performance.now();
        pending.set(id, { sentAt, left: o.members - 1 });
        sender.call("sendMessage", { conversationId, clientMsgId: `${id}@${run}`, text: `${tag}${id}.`, firstAttempt: true }).then(
          () => {
            acknowledged++;
            if (sentAt >= measuredFrom && sentAt < measuredUntil) acks.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
          },
          () => undefined,
        );
      }
      if (now - progress >= 1000) {
        progress = now;
        const h = lastRecipient.totalCount > 0 ? ` to last recipient p50 ${ms(lastRecipient.getValueAtPercentile(50))} ms p99 ${ms(lastRecipient.getValueAtPercentile(99))} ms` : "";
        o.log(`[group] ${((now - start) / 1000).toFixed(0)}s offered ${o.rate}/s into ${o.members} members: sent ${sent} acked ${acknowledged} deliveries ${deliveries} complete ${completed}${h}`);
      }
    }, 2);
  });
  const after = sampleAll(o.pids);
  const drainUntil = performance.now() + 30_000;
  while (pending.size > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
  await Promise.all(sockets.map((s) => s.close()));

  const from = before ?? after;
  const used = usage(from, after, o.durationS);
  const meshCpu = cpuSecondsOf(used, (name) => name !== "loadgen");
  return {
    members: o.members,
    offeredRate: o.rate,
    durationS: o.durationS,
    sent,
    acknowledged,
    deliveries,
    deliveriesPerSecond: Math.round(deliveries / o.durationS),
    completed,
    lastRecipientLatencyMs: {
      p50: ms(lastRecipient.getValueAtPercentile(50)),
      p90: ms(lastRecipient.getValueAtPercentile(90)),
      p99: ms(lastRecipient.getValueAtPercentile(99)),
      max: ms(lastRecipient.maxValue),
    },
    deliveryLatencyMs: { p50: ms(perDelivery.getValueAtPercentile(50)), p99: ms(perDelivery.getValueAtPercentile(99)) },
    ackLatencyMs: { p50: ms(acks.getValueAtPercentile(50)), p99: ms(acks.getValueAtPercentile(99)) },
    cpuMicrosPerDelivery: deliveries === 0 ? 0 : Math.round((meshCpu / deliveries) * 1e6 * 10) / 10,
    processes: processReports(used),
    machineCpu: machineUsage(from, after),
    chart: [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99].map((p) => [p, ms(lastRecipient.getValueAtPercentile(p))]),
  };
}
