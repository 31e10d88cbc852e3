// EdgeService.Deliver on the edge: events reach the sessions it holds (not the sending device),
// named by session or by user (every session of those users here, and the users reached reported),
// sessions it does not hold are reported gone, and each event is written in a span of its own trace,
// even when one request carries several messages; a socket's frames of one request go out together.
import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventSchema, type Event } from "../../../gen/chat/api/v1/events_pb.js";
import { DeliverRequestSchema } from "../../../gen/chat/edge/v1/edge_pb.js";
import { initTelemetry } from "../../../packages/runtime/src/telemetry/index.js";
import { ConnectionTable } from "../src/domain/connections.js";
import { createEdgeHandler } from "../src/handler.js";

const telemetry = initTelemetry({ serviceName: "edge-deliver-test", memoryExporter: true });
const message = (seq: number) => create(EventSchema, { kind: { case: "message", value: { message: { conversationId: "c1", seq: BigInt(seq), senderId: "ann" } } } });
const traceparent = (traceId: string) => ({ traceparent: `00-${traceId}-${"1".repeat(16)}-01` });

describe("EdgeService.Deliver", () => {
  it("writes each event to its sessions, skips the sending device, reports gone sessions, and keeps each event's trace", async () => {
    const table = new ConnectionTable();
    const got = new Map<string, Event[]>();
    /** Writes each connection was given. */
    const sends = new Map<string, number>();
    for (const [sessionId, userId, deviceId] of [["s-ann-phone", "ann", "phone"], ["s-ann-laptop", "ann", "laptop"], ["s-bob", "bob", "phone"]] as const) {
      got.set(sessionId, []);
      table.add({
        sessionId,
        userId,
        deviceId,
        send: (events) => {
          got.get(sessionId)?.push(...events);
          sends.set(sessionId, (sends.get(sessionId) ?? 0) + 1);
          return true;
        },
        drain: () => undefined,
      });
    }
    const handler = createEdgeHandler({ table, drain: async () => 0, defaultDrainMs: 1000 });
    const [t1, t2] = ["a".repeat(32), "b".repeat(32)];
    const r = await handler.deliver(
      create(DeliverRequestSchema, {
        sessionSets: [{ sessionIds: ["s-ann-phone", "s-ann-laptop", "s-bob", "s-gone"] }],
        deliveries: [
          { event: message(1), sessionSet: 0, excludeDeviceId: "phone", traceHeaders: traceparent(t1) },
          { event: message(2), sessionSet: 0, excludeDeviceId: "phone", traceHeaders: traceparent(t2) },
        ],
      }),
      {} as never,
    );
    assert.deepEqual([r.delivered, r.goneSessionIds], [4, ["s-gone"]]);
    assert.equal(got.get("s-ann-phone")?.length, 0, "not back to the sending device");
    assert.deepEqual(got.get("s-bob")?.map((e) => (e.kind.case === "message" ? Number(e.kind.value.message?.seq) : 0)), [1, 2], "in order");
    assert.deepEqual(Object.fromEntries(sends), { "s-ann-laptop": 1, "s-bob": 1 }, "each socket's two events go out in one write");
    const writes = (await telemetry.finishedSpans()).filter((s) => s.name === "write event to sockets");
    assert.deepEqual(writes.map((s) => s.spanContext().traceId).sort(), [t1, t2], "one span per event, each in its own trace");
  });

  it("by user: writes to every session here of the named users but the sending device, and reports who it reached", async () => {
    const table = new ConnectionTable();
    const got = new Map<string, number>();
    const add = (sessionId: string, userId: string, deviceId: string) =>
      table.add({ sessionId, userId, deviceId, send: (events) => (got.set(sessionId, (got.get(sessionId) ?? 0) + events.length), true), drain: () => undefined });
    add("s-ann-phone", "ann", "phone");
    add("s-ann-laptop", "ann", "laptop");
    add("s-bob-1", "bob", "phone");
    add("s-bob-2", "bob", "tablet");
    add("s-cat", "cat", "phone");
    add("s-eve", "eve", "phone"); // not in the audience
    add("s-dan", "dan", "phone");
    table.remove("s-dan"); // gone before the event: dan has no session here any more
    const handler = createEdgeHandler({ table, drain: async () => 0, defaultDrainMs: 1000 });
    const r = await handler.deliver(
      create(DeliverRequestSchema, {
        userSets: [{ userIds: ["ann", "bob", "cat", "dan", "fay"] }],
        deliveries: [
          { event: message(1), userSet: 0, excludeDeviceId: "phone" },
          { event: message(2), userSet: 0, excludeDeviceId: "phone" },
        ],
      }),
      {} as never,
    );
    assert.equal(r.delivered, 8);
    assert.deepEqual(Object.fromEntries(got), { "s-ann-laptop": 2, "s-bob-1": 2, "s-bob-2": 2, "s-cat": 2 }, "the sender's phone and eve get nothing; bob's phone is not the sender's");
    assert.deepEqual([...(r.reachedUserIds ?? [])].sort(), ["ann", "bob", "cat"]);
    assert.deepEqual(r.goneSessionIds, []);
    await assert.rejects(async () => handler.deliver(create(DeliverRequestSchema, { deliveries: [{ event: message(3), userSet: 1 }] }), {} as never), /user_set 1/);
  });
});
