// Observability end to end (issue #7): one trace per message from the sender's frame on the edge,
// through the message store's append and routing's consumer, to the Deliver that writes the
// recipient's frame on the edge; every service's /metrics with its RPC and domain metrics, the
// consumer lag of the services that consume the bus and every process's runtime gauges.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { stopCluster, type ClusterProcess } from "../../cmd/cluster.js";
import type { ServiceName } from "../../cmd/services.js";
import type { Event } from "../../gen/chat/api/v1/events_pb.js";
import { PushService } from "../../gen/chat/push/v1/push_pb.js";
import { RoutingService } from "../../gen/chat/routing/v1/routing_pb.js";
import { missing, SERVED_METRICS } from "../support/metrics.js";
import { addressOf, modes, runClients } from "../support/modes.js";
import { startOtlpReceiver, type ReceivedSpan } from "../support/otlp.js";

const texts = (events: Event[]) => events.flatMap((e) => (e.kind.case === "message" && e.kind.value.message?.content.case === "text" ? [e.kind.value.message.content.value] : []));

for (const mode of modes("tracing", 12_000)) describe(mode.name, () => {
  let cluster: ClusterProcess[] = [];
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  const { user, open, closeAll } = runClients(mode);
  const svc = (s: ServiceName) => mode.spanService(s);

  before(async () => {
    otlp = await startOtlpReceiver();
    cluster = await mode.start({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: "100", LOG_LEVEL: "warn" });
  });
  after(async () => {
    await closeAll();
    await stopCluster(cluster);
    await otlp?.close();
  });

  /** Waits until `find` returns something from the received spans. */
  async function waitFor<T>(what: string, find: (spans: ReceivedSpan[]) => T | undefined, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find(otlp.spans);
      if (found !== undefined) return found;
      if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs} ms (${otlp.spans.length} spans received)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The spans a message's trace must have: the sender's frame to the recipient's frame. */
  async function assertWholeTrace(traceId: string): Promise<ReceivedSpan[]> {
    const expected: [string, (s: ReceivedSpan) => boolean][] = [
      ["edge: the sender's SendMessage frame", (s) => s.service === svc("edge") && s.name === "chat.api.v1.ChatService/SendMessage"],
      // The edge's sends reach the store in AppendMany calls; each message's append is a span of its own trace.
      ["message-store: the message's append", (s) => s.service === svc("message-store") && s.name === "append message"],
      ["routing: the message's consumer span", (s) => s.service === svc("routing") && /^route .*chat\.messages\.v1$/.test(s.name)],
      ["routing: the deliver span", (s) => s.service === svc("routing") && /^deliver \d+ events to edge$/.test(s.name)],
      ["edge: the Deliver server span", (s) => s.service === svc("edge") && /EdgeService\/Deliver$/.test(s.name) && s.parentSpanId !== ""],
      ["edge: the recipient's frame", (s) => s.service === svc("edge") && s.name === "write event to sockets"],
    ];
    return waitFor(`every span of trace ${traceId}`, (spans) => {
      const mine = spans.filter((s) => s.traceId === traceId);
      return expected.every(([, match]) => mine.some(match)) ? mine : undefined;
    }).catch((err: unknown) => {
      const mine = otlp.spans.filter((s) => s.traceId === traceId);
      const missing = expected.filter(([, match]) => !mine.some(match)).map(([what]) => what);
      throw new Error(`${String(err)}; missing: ${missing.join(", ")}; have: ${mine.map((s) => `${s.service}:${s.name}`).join(", ")}`);
    });
  }

  it("a message has one trace from the sender's frame to the recipient's frame, and the next message its own", async () => {
    const [alice, bob] = [await open("alice"), await open("bob")];
    const { conversation } = await alice.call("getOrCreateDirectConversation", { peerId: user("bob") });
    const conversationId = conversation?.conversationId ?? assert.fail("no conversation");
    const traces: string[] = [];
    for (const text of ["first", "second"]) {
      const before = new Set(otlp.spans.map((s) => s.spanId));
      await alice.call("sendMessage", { conversationId, clientMsgId: text, text });
      await bob.until((ev) => texts(ev).includes(text));
      const send = await waitFor(`the edge's SendMessage span of "${text}"`, (spans) =>
        spans.find((s) => !before.has(s.spanId) && s.service === svc("edge") && s.name === "chat.api.v1.ChatService/SendMessage"),
      );
      const spans = await assertWholeTrace(send.traceId);
      // The recipient's frame is written in a span of the message's own trace, a child of its consumer
      // span (carried in the Deliver request per event, so a batched Deliver keeps every message's trace).
      const consumer = spans.find((s) => /^route /.test(s.name));
      const write = spans.find((s) => s.name === "write event to sockets");
      assert.equal(write?.parentSpanId, consumer?.spanId, "the socket writes are a child of the message's consumer span");
      // Routing's Deliver call is a child of the message's own consumer span (through the deliver span).
      const deliverSpan = spans.find((s) => /^deliver \d+ events to edge$/.test(s.name));
      assert.equal(deliverSpan?.parentSpanId, consumer?.spanId, "the deliver span is a child of the message's consumer span");
      traces.push(send.traceId);
    }
    assert.notEqual(traces[0], traces[1], "the second message has its own trace");
  });

  it("every service serves /metrics with its RPC metrics, its domain metrics, its consumer lag and its runtime gauges", async () => {
    // Nothing else calls push (bob was online) or routing (it consumes): one call each so every service has served an RPC.
    const grpc = (name: ServiceName) => createGrpcTransport({ baseUrl: `http://${addressOf(cluster, name)}` });
    await createClient(PushService, grpc("push")).listTargets({ userId: user("alice") });
    await createClient(RoutingService, grpc("routing")).getStatus({});
    const seen = new Set<string>();
    for (const p of cluster) {
      if (seen.has(p.address)) continue; // embedded: one process for all
      seen.add(p.address);
      const res = await fetch(`http://${p.address}/metrics`);
      assert.equal(res.status, 200, `${p.name} /metrics`);
      const text = await res.text();
      assert.match(text, /^rpc_server_duration_(seconds_)?count\{.*rpc_method="[A-Za-z]+".*\} [1-9]/m, `${p.name}: an RPC duration per method`);
      assert.match(text, /^rpc_server_duration_bucket\{.*le="0\.005"\}/m, `${p.name}: buckets in seconds`);
    }
    // Domain, consumer lag and runtime metrics (tests/support/metrics.ts); embedded: all of them from the one process.
    for (const p of cluster) {
      const text = await (await fetch(`http://${p.address}/metrics`)).text();
      for (const metric of SERVED_METRICS[p.name]) {
        const why = missing(text, metric);
        assert.equal(why, undefined, `${p.name} serves ${metric.name}: ${why ?? ""}`);
      }
    }
  });
});
