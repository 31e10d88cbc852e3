// Fan-out rules: who gets an event, and who gets a push instead.
import { create } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SessionSchema } from "../../../gen/chat/connection/v1/connection_pb.js";
import { BY_USER_MAX_EDGES, BY_USER_MIN_AUDIENCE, fanout, goesToEveryEdge, unreached, unreachedByUser } from "../src/domain/fanout.js";

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

  it("pushes to members whose every targeted session missed the event, never to the sender", () => {
    const s = (userId: string, deviceId: string, edgeId: string) => create(SessionSchema, { sessionId: `${userId}/${deviceId}`, userId, deviceId, edgeId });
    const sessions = new Map([
      ["ann", [s("ann", "phone", "e1"), s("ann", "laptop", "e2")]],
      ["bob", [s("bob", "phone", "e1"), s("bob", "tablet", "e2")]],
      ["cat", [s("cat", "phone", "e1")]],
    ]);
    const plan = fanout(["ann", "bob", "cat", "dan"], sessions, { userId: "ann", deviceId: "phone" });
    // Edge e1 died: bob still has his tablet on e2; cat had only e1; ann is the sender.
    assert.deepEqual(unreached(plan, new Set(["ann/phone", "bob/phone", "cat/phone", "ann/laptop"])), ["dan", "cat"]);
    assert.deepEqual(unreached(plan, new Set()), ["dan"]);
  });

  it("by user: pushes to the members no edge reached, never to the sender", () => {
    assert.deepEqual(unreachedByUser(["ann", "bob", "cat", "dan"], new Set(["bob", "eve"]), "ann"), ["cat", "dan"]);
    assert.deepEqual(unreachedByUser(["ann", "bob"], new Set(["ann", "bob"])), []);
  });

  it("by user when the edges are few or the audience large; by session otherwise", () => {
    const limits = { minAudience: BY_USER_MIN_AUDIENCE, maxEdges: BY_USER_MAX_EDGES };
    assert.equal(goesToEveryEdge(2, 1, limits), true, "one edge: a 1:1 event goes to it by user");
    assert.equal(goesToEveryEdge(2, 4, limits), true);
    assert.equal(goesToEveryEdge(2, 5, limits), false, "five edges: a 1:1 event goes to its sessions");
    assert.equal(goesToEveryEdge(64, 50, limits), true, "a large group goes to every edge however many");
    assert.equal(goesToEveryEdge(2, 0, { ...limits, maxEdges: 0 }), true, "no live edge: nobody to look up, everyone gets the push");
    assert.equal(goesToEveryEdge(2, 1, { ...limits, maxEdges: 0 }), false, "BY_USER_MAX_EDGES=0: sessions looked up");
  });
});
