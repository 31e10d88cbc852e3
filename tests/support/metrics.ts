// What each service's /metrics must serve beyond the RPC duration histograms every service has:
// tests/mesh/tracing.test.ts scrapes the running mesh for them (both modes), and
// tests/deploy/dashboard.test.ts checks each is defined in the source, as it checks the dashboard.
import type { ServiceName } from "../../cmd/services.js";

export interface ServedMetric {
  /** The Prometheus name. */
  name: string;
  /** Labels a sample must carry, matched whole. */
  labels?: Record<string, RegExp>;
  /** Whether a sample must be above zero (something happened) or only present. */
  positive: boolean;
}

/** A consumer group or topic name, with or without the BUS_NAMESPACE prefix ("tracing." in the tests). */
const busName = (name: string) => new RegExp(`^(?:[\\w-]+\\.)?${name.replace(/\./g, "\\.")}$`);

/** Every process: its memory and event-loop delay. */
const RUNTIME: ServedMetric[] = [
  { name: "process_resident_memory_bytes", positive: true },
  { name: "nodejs_heap_used_bytes", positive: true },
  { name: "nodejs_heap_total_bytes", positive: true },
  { name: "nodejs_eventloop_delay_p99_seconds", positive: false },
  { name: "nodejs_eventloop_delay_mean_seconds", positive: false },
  { name: "nodejs_gc_duration_seconds_count", labels: { kind: /^(minor|major|incremental|weakcb)$/ }, positive: true },
];

const lag = (group: RegExp, topic: string): ServedMetric => ({ name: "chat_bus_consumer_lag", labels: { consumer_group: group, topic: busName(topic), partition: /^\d+$/ }, positive: false });

export const SERVED_METRICS: Record<ServiceName, ServedMetric[]> = {
  edge: [...RUNTIME, { name: "chat_edge_connections", positive: true }],
  connection: RUNTIME,
  "message-store": [...RUNTIME, lag(/^(?:[\w-]+\.)?message-store\.[0-9a-f-]{36}$/, "chat.membership.v1")],
  routing: [
    ...RUNTIME,
    { name: "routing_deliveries_total", positive: true },
    { name: "routing_events_total", positive: true },
    lag(busName("routing"), "chat.messages.v1"),
    lag(busName("routing"), "chat.receipts.v1"),
  ],
  presence: RUNTIME,
  group: RUNTIME,
  push: [...RUNTIME, lag(busName("push"), "chat.push.v1")],
};

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in a Prometheus text exposition. */
export function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ""] = l[2] ?? "";
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** Whether the exposition has a sample of the metric as it is required; the reason when not. */
export function missing(text: string, metric: ServedMetric): string | undefined {
  const all = samples(text, metric.name);
  if (all.length === 0) return `no ${metric.name}`;
  const labelled = all.filter((s) => Object.entries(metric.labels ?? {}).every(([k, re]) => re.test(s.labels[k] ?? "")));
  if (labelled.length === 0) return `no ${metric.name} with ${JSON.stringify(metric.labels, (_k, v: unknown) => (v instanceof RegExp ? String(v) : v))}; have ${JSON.stringify(all.map((s) => s.labels))}`;
  if (metric.positive && !labelled.some((s) => s.value > 0)) return `${metric.name} is not above 0`;
  if (labelled.some((s) => !Number.isFinite(s.value))) return `${metric.name} has a value that is not a number`;
  return undefined;
}

/** How many calls of an RPC method a process has made (client) or served (server), every outcome, from its /metrics. */
export async function rpcCalls(address: string, side: "client" | "server", method: string): Promise<number> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const re = new RegExp(`^rpc_${side}_duration_(?:seconds_)?count\\{[^}]*rpc_method="${method}"[^}]*\\} (\\d+)`, "gm");
  let n = 0;
  for (const m of text.matchAll(re)) n += Number(m[1]);
  return n;
}
