// Fan-out rules: who gets an event, and how deliveries to one edge become Deliver requests.
import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventSchema } from "../../../gen/chat/api/v1/events_pb.js";
import { SessionSchema } from "../../../gen/chat/connection/v1/connection_pb.js";
import { deliverRequests, fanout } from "../src/domain/fanout.js";

const event = (n: number) => create(EventSchema, { kind: { case: "receipt", value: { conversationId: `c${n}` } } });

describe("fan-out", () => {
  it("reaches every session but the sending device, and names members with none", () => {
    const s = (userId: string, deviceId: string, edgeId: string) => create(SessionSchema, { sessionId: `${userId}/${deviceId}`, userId, deviceId, edgeId });
    const sessions = new Map([
      ["ann", [s("ann", "phone", "e1"), s("ann", "laptop", "e2")]],
      ["bob", [s("bob", "phone", "e1")]],
    ]);
    const plan = fanout(["ann", "bob", "cat"], sessions, { userId: "ann", deviceId: "phone" });
    assert.deepEqual(Object.fromEntries(plan.byEdge), { e1: ["bob/phone"], e2: ["ann/laptop"] });
    assert.deepEqual(plan.offline, ["cat"]);
  });

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
});
