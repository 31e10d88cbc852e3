// The mesh: every service its own OS process against real Kafka, Cassandra, Redis and PostgreSQL.
// Health, reflection (also through grpcurl), one call per service over gRPC and over Connect, and
// a client's traceparent continuing in the server's spans.
import { create, type DescService } from "@bufbuild/protobuf";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ConnectionService } from "../../gen/chat/connection/v1/connection_pb.js";
import { EdgeService } from "../../gen/chat/edge/v1/edge_pb.js";
import { GroupService } from "../../gen/chat/group/v1/group_pb.js";
import { MessageStoreService } from "../../gen/chat/messagestore/v1/messagestore_pb.js";
import { PresenceService } from "../../gen/chat/presence/v1/presence_pb.js";
import { PushService } from "../../gen/chat/push/v1/push_pb.js";
import { RoutingService } from "../../gen/chat/routing/v1/routing_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { stopCluster, type ClusterProcess } from "../../cmd/cluster.js";
import type { ServiceName } from "../../cmd/services.js";
import { addressOf, modes } from "../support/modes.js";
import { startOtlpReceiver } from "../support/otlp.js";

const GRPCURL = "var/tools/bin/grpcurl";
const run = promisify(execFile);

const SERVICE_OF: Record<ServiceName, DescService> = {
  group: GroupService,
  connection: ConnectionService,
  presence: PresenceService,
  "message-store": MessageStoreService,
  push: PushService,
  routing: RoutingService,
  edge: EdgeService,
};

const grpc = (address: string) => createGrpcTransport({ baseUrl: `http://${address}` });
const connect = (address: string) => createConnectTransport({ baseUrl: `http://${address}`, httpVersion: "1.1" });

for (const mode of modes("mesh", 20_000)) describe(mode.name, () => {
  let cluster: ClusterProcess[] = [];
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  const addr = (name: ServiceName) => addressOf(cluster, name);
  const run_ = randomBytes(4).toString("hex");
  const env = () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: "100", LOG_LEVEL: "warn" });

  before(async () => {
    otlp = await startOtlpReceiver();
    cluster = await mode.start(env());
  });

  after(async () => {
    await stopCluster(cluster);
    await otlp?.close();
  });

  it("every health check is SERVING, overall and per service", async () => {
    for (const p of cluster) {
      const health = createClient(Health, grpc(p.address));
      for (const service of ["", SERVICE_OF[p.name].typeName]) {
        const r = await health.check({ service });
        assert.equal(r.status, HealthCheckResponse_ServingStatus.SERVING, `${p.name} "${service}"`);
      }
    }
  });

  it("reflection lists every service of every process", async () => {
    for (const p of cluster) {
      const reflection = createClient(ServerReflection, grpc(p.address));
      async function* ask() {
        yield create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
      }
      const names: string[] = [];
      for await (const res of reflection.serverReflectionInfo(ask())) {
        assert.equal(res.messageResponse.case, "listServicesResponse");
        names.push(...res.messageResponse.value.service.map((s) => s.name));
      }
      for (const expected of [SERVICE_OF[p.name].typeName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]) {
        assert.ok(names.includes(expected), `${p.name} lists ${expected}: ${names.join(", ")}`);
      }
    }
  });

  it("grpcurl lists and describes every service through reflection", async () => {
    assert.ok(existsSync(GRPCURL), `${GRPCURL} missing: 'make test' installs it (infra/install.sh)`);
    for (const p of cluster) {
      const list = await run(GRPCURL, ["-plaintext", p.address, "list"]);
      assert.match(list.stdout, new RegExp(SERVICE_OF[p.name].typeName.replaceAll(".", "\\.")), p.name);
      const describe_ = await run(GRPCURL, ["-plaintext", p.address, "describe", SERVICE_OF[p.name].typeName]);
      assert.match(describe_.stdout, /rpc \w+ ?\(/, `${p.name} describe`);
    }
  });

  for (const [protocol, transportOf] of [
    ["gRPC", grpc],
    ["Connect", connect],
  ] as const) {
    it(`a ${protocol} client completes one call per service`, async () => {
      const t = (name: ServiceName): Transport => transportOf(addr(name));
      const alice = `alice-${protocol}-${run_}`;
      const bob = `bob-${protocol}-${run_}`;

      const group = createClient(GroupService, t("group"));
      const direct = await group.getOrCreateDirectConversation({ userId: alice, peerId: bob });
      const conversationId = direct.conversation?.conversationId ?? assert.fail("no conversation");
      assert.equal((await group.getOrCreateDirectConversation({ userId: bob, peerId: alice })).conversation?.conversationId, conversationId);

      const store = createClient(MessageStoreService, t("message-store"));
      const sent = await store.append({ conversationId, senderId: alice, senderDeviceId: "d1", clientMsgId: "m1", content: { case: "text", value: "hello" } });
      assert.equal(sent.message?.seq, 1n);
      const retry = await store.append({ conversationId, senderId: alice, senderDeviceId: "d1", clientMsgId: "m1", content: { case: "text", value: "hello" } });
      assert.deepEqual([retry.created, retry.message?.seq, retry.message?.messageId], [false, 1n, sent.message?.messageId]);
      const history = await store.getHistory({ conversationId, userId: bob });
      assert.deepEqual(history.messages.map((m) => m.content.value), ["hello"]);

      const connection = createClient(ConnectionService, t("connection"));
      const edges = await connection.listEdges({});
      assert.ok(edges.edges.some((e) => e.grpcAddress === addr("edge")), "the edge registered itself");

      const presence = createClient(PresenceService, t("presence"));
      const seen = await presence.getPresence({ viewerId: alice, userIds: [bob] });
      assert.equal(seen.presences.length, 1);

      const push = createClient(PushService, t("push"));
      assert.deepEqual((await push.listTargets({ userId: alice })).targets, []);

      const routing = createClient(RoutingService, t("routing"));
      assert.equal((await routing.getStatus({})).bus, mode.bus);

      const edge = createClient(EdgeService, t("edge"));
      const delivered = await edge.deliver({ deliveries: [] });
      assert.equal(delivered.delivered, 0);
    });
  }

  it("a traceparent sent by the client shows up in the server's span", async () => {
    const traceId = randomBytes(16).toString("hex");
    const parentId = randomBytes(8).toString("hex");
    const group = createClient(GroupService, grpc(addr("group")));
    await group.getOrCreateDirectConversation(
      { userId: `carol-${run_}`, peerId: `dave-${run_}` },
      { headers: { traceparent: `00-${traceId}-${parentId}-01` } },
    );
    const deadline = Date.now() + 15_000;
    let span;
    while (span === undefined && Date.now() < deadline) {
      span = otlp.spans.find((s) => s.traceId === traceId);
      if (span === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(span, "no span with the client's trace id reached the OTLP receiver");
    assert.equal(span.parentSpanId, parentId);
    assert.equal(span.service, mode.spanService("group"));
    assert.match(span.name, /GetOrCreateDirectConversation/);
  });
  it("keeps its data across a restart", async () => {
    const group = createClient(GroupService, grpc(addr("group")));
    const { conversation } = await group.getOrCreateDirectConversation({ userId: `fay-${run_}`, peerId: `gus-${run_}` });
    const conversationId = conversation?.conversationId ?? assert.fail("no conversation");
    await createClient(MessageStoreService, grpc(addr("message-store"))).append({ conversationId, senderId: `fay-${run_}`, clientMsgId: "r1", content: { case: "text", value: "before restart" } });
    await stopCluster(cluster);
    cluster = await mode.start(env());
    const again = await createClient(GroupService, grpc(addr("group"))).getOrCreateDirectConversation({ userId: `gus-${run_}`, peerId: `fay-${run_}` });
    assert.deepEqual([again.created, again.conversation?.conversationId], [false, conversationId]);
    const history = await createClient(MessageStoreService, grpc(addr("message-store"))).getHistory({ conversationId, userId: `gus-${run_}` });
    assert.deepEqual(history.messages.map((m) => [m.seq, m.content.value]), [[1n, "before restart"]]);
  });
});
