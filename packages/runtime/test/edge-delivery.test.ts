// Handing events to edges: Deliver requests share session lists and stay bounded; an edge that
// does not answer is skipped (at once, the next time) without holding the others' deliveries; gone
// sessions are dropped from the registry. Real gRPC servers on port 0 as the edges; the connection
// service is a small in-memory stand-in (the real one is in the mesh tests).
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { EventSchema } from "../../../gen/chat/api/v1/events_pb.js";
import { ConnectionService, EdgeSchema, SessionSchema, type Session } from "../../../gen/chat/connection/v1/connection_pb.js";
import { DeliverRequestSchema, EdgeService, type DeliverRequest } from "../../../gen/chat/edge/v1/edge_pb.js";
import { deliverRequests, EdgeDeliverer, MAX_DELIVER_ENTRIES } from "../src/edge-delivery.js";
import { createLogger } from "../src/log.js";
import { DEFAULT_READ_MAX_BYTES, startServer, type RunningServer } from "../src/server.js";

const event = (n: number) => create(EventSchema, { kind: { case: "receipt", value: { conversationId: `c${n}` } } });
const logger = createLogger("test");

describe("edge delivery", () => {
  it("names a shared session list once per request, keeps the order, and splits large batches", () => {
    const group = Array.from({ length: 500 }, (_, i) => `s${i}`);
    const deliveries = [...Array.from({ length: 100 }, (_, i) => ({ sessionIds: group, event: event(i) })), { sessionIds: ["x"], event: event(100) }];
    const [one, ...rest] = deliverRequests(deliveries);
    assert.equal(rest.length, 0);
    assert.deepEqual([one?.sessionSets.length, one?.deliveries.length], [2, 101]);
    assert.deepEqual(one?.deliveries.map((d) => d.sessionSet), [...Array.from({ length: 100 }, () => 0), 1]);
    const split = deliverRequests(deliveries, 550);
    assert.ok(split.length > 1);
    assert.ok(split.every((r) => r.sessionSets.reduce((n, set) => n + set.sessionIds.length, 0) + r.deliveries.length <= 550));
    const order = split.flatMap((r) => r.deliveries.map((d) => (d.event?.kind.case === "receipt" ? d.event.kind.value.conversationId : "")));
    assert.deepEqual(order, deliveries.map((_, i) => `c${i}`));
  });

  it("keeps a request's bytes under the edge's read limit: texts at the size limit go several requests", () => {
    const text = "€".repeat(100_000); // 300,000 bytes of UTF-8
    const message = (n: number) => create(EventSchema, { kind: { case: "message", value: { message: { conversationId: `c${n}`, seq: BigInt(n), content: { case: "text", value: text } } } } });
    const deliveries = Array.from({ length: 20 }, (_, i) => ({ sessionIds: ["s1", "s2"], event: message(i) }));
    const size = (r: DeliverRequest) => toBinary(DeliverRequestSchema, r).length;
    const unbounded = deliverRequests(deliveries, MAX_DELIVER_ENTRIES, Number.POSITIVE_INFINITY);
    assert.equal(unbounded.length, 1);
    assert.ok(size(unbounded[0]) > DEFAULT_READ_MAX_BYTES, "without the byte bound the edge would refuse the request");
    const split = deliverRequests(deliveries);
    assert.ok(split.length > 1);
    assert.ok(split.every((r) => size(r) <= DEFAULT_READ_MAX_BYTES), `sizes ${split.map(size).join(", ")}`);
    const order = split.flatMap((r) => r.deliveries.map((d) => (d.event?.kind.case === "message" ? d.event.kind.value.message?.seq : undefined)));
    assert.deepEqual(order, deliveries.map((_, i) => BigInt(i)));
  });

  it("names a shared user list once per request, apart from session lists, with the sender's device to skip", () => {
    const members = Array.from({ length: 300 }, (_, i) => `u${i}`);
    const deliveries = [
      { sessionIds: [], userIds: members, excludeDeviceId: "phone", event: event(0) },
      { sessionIds: ["s1"], event: event(1) },
      { sessionIds: [], userIds: members, event: event(2) },
    ];
    const [one, ...rest] = deliverRequests(deliveries);
    assert.equal(rest.length, 0);
    assert.deepEqual([one?.userSets.length, one?.sessionSets.length], [1, 1]);
    assert.deepEqual(one?.deliveries.map((d) => [d.userSet, d.sessionSet, d.excludeDeviceId]), [[0, undefined, "phone"], [undefined, 0, ""], [0, undefined, ""]]);
    const split = deliverRequests(deliveries, 302);
    assert.deepEqual(split.map((r) => r.deliveries.length), [1, 1, 1], "a user list counts toward the bound like a session list");
    assert.deepEqual(split.map((r) => r.userSets[0]?.userIds.length), [300, undefined, 300], "and is named again in the next request");
  });

  const servers: RunningServer[] = [];
  after(async () => Promise.all(servers.map((s) => s.close())));

  it("delivers to a live edge, skips one that does not answer without waiting on it again, and drops gone sessions", async () => {
    const edges = new Map<string, string>();
    const unregistered: string[] = [];
    const connection = createClient(
      ConnectionService,
      createRouterTransport((router) =>
        router.service(ConnectionService, {
          listEdges: () => ({ edges: [...edges].map(([edgeId, grpcAddress]) => create(EdgeSchema, { edgeId, grpcAddress })) }),
          unregisterSessions: (req) => {
            unregistered.push(...req.sessions.map((s) => `${s.userId}/${s.sessionId}`));
            return { removed: req.sessions.length };
          },
        }),
      ),
    );
    const received: DeliverRequest[] = [];
    const live = await startServer({
      name: "edge-live",
      host: "127.0.0.1",
      port: 0,
      services: [EdgeService],
      logger,
      shutdownTimeoutMs: 1_000,
      routes: (router) =>
        router.service(EdgeService, {
          deliver(req) {
            received.push(req);
            return { delivered: req.deliveries.length, goneSessionIds: ["gone-1"] };
          },
          drain: () => ({ clients: 0 }),
        }),
    });
    servers.push(live);
    // A dead edge: registered, but its port refuses connections.
    const dead = await startServer({ name: "edge-dead", host: "127.0.0.1", port: 0, services: [], logger, shutdownTimeoutMs: 1_000, routes: () => undefined });
    await dead.close();
    edges.set("live", live.address).set("dead", dead.address);
    const session = (id: string, userId: string, edgeId: string): Session => create(SessionSchema, { sessionId: id, userId, deviceId: "d", edgeId });
    const sessions = [session("live-1", "ann", "live"), session("gone-1", "bob", "live"), session("dead-1", "cat", "dead")];
    const byId = new Map(sessions.map((s) => [s.sessionId, s]));
    const deliverer = new EdgeDeliverer({ connection, logger, timeoutMs: 2_000, skipFailedMs: 60_000 });

    const [ok, failed] = await Promise.all([deliverer.deliver("live", [{ sessionIds: ["live-1", "gone-1"], event: event(1) }], byId), deliverer.deliver("dead", [{ sessionIds: ["dead-1"], event: event(2) }], byId)]);
    assert.deepEqual([ok.reached, ok.delivered, ok.gone], [true, 1, ["gone-1"]]);
    assert.equal(received.length, 1);
    assert.equal(failed.reached, false);
    const t = Date.now();
    assert.equal((await deliverer.deliver("dead", [{ sessionIds: ["dead-1"], event: event(3) }], byId)).reached, false);
    assert.ok(Date.now() - t < 50, "a failed edge is skipped without a new attempt for a while");
    assert.deepEqual(unregistered, ["bob/gone-1"], "the gone session is dropped from the registry, with its user");
    assert.equal((await deliverer.deliver("unknown", [{ sessionIds: ["x"], event: event(4) }], byId)).reached, false, "an edge that is not registered");
  });
});
