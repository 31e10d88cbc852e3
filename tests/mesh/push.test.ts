// Push notifications driven through the public API, in both modes: a member with no live session
// gets a Web Push notification (decrypted here with the subscription's keys, VAPID checked); an
// online member, a message read on another device meanwhile, and a muted conversation get none;
// private previews carry generic text; the badge is the member's unread count. Routing finds who
// is online both ways: the cluster looks every member's sessions up (BY_USER_MAX_EDGES=0), the
// embedded process sends each event to its one edge by user (the default with few edges).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { stopCluster, type ClusterProcess } from "../../cmd/cluster.js";
import { ReceiptKind } from "../../gen/chat/api/v1/enums_pb.js";
import { connectClient, modes, runClients, tokenFor } from "../support/modes.js";
import { WebPushEndpoint } from "../support/push-providers.js";
import { until } from "../support/wait.js";
import { rpcCalls } from "../support/metrics.js";

const web = new WebPushEndpoint();
await web.start();

for (const mode of modes("push", 14_000)) describe(mode.name, () => {
  let mesh: ClusterProcess[] = [];
  const { user, open, closeAll } = runClients(mode);
  /** Registers a Web Push subscription for a user through the public API (Connect: no live session). */
  const subscribe = async (name: string) => {
    const sub = web.subscribe(`${mode.bus}-${user(name)}`);
    const api = connectClient(mode, await tokenFor(user(name)), "browser");
    const r = await api.registerPushTarget({ target: { case: "webPush", value: { endpoint: sub.endpoint, p256dh: sub.p256dh, auth: sub.auth } } });
    assert.ok(r.target?.targetId);
    return { sub, api, id: `${mode.bus}-${user(name)}` };
  };
  const pushesTo = (id: string) => web.received.filter((r) => r.subscription === id);

  before(async () => {
    mesh = await mode.start({ LOG_LEVEL: "warn", ...web.env(), PUSH_RETRY_MAX_MS: "4000", ...(mode.bus === "kafka" ? { BY_USER_MAX_EDGES: "0" } : {}) });
  });
  after(async () => {
    await closeAll();
    await stopCluster(mesh);
  });

  it("an offline member gets a Web Push notification: sender, preview, badge; an online member gets none", async () => {
    const ann = await open("ann", "phone");
    const bob = await subscribe("bob");
    const { conversation } = await ann.call("getOrCreateDirectConversation", { peerId: user("bob") });
    const conversationId = conversation?.conversationId ?? assert.fail("no conversation");
    const first = await ann.call("sendMessage", { conversationId, clientMsgId: "p1", text: "are you there?" });
    await until("bob's push", () => pushesTo(bob.id).length >= 1);
    const [p] = pushesTo(bob.id);
    assert.deepEqual({ title: p?.payload.title, body: p?.payload.body, badge: p?.payload.badge }, { title: user("ann"), body: "are you there?", badge: 1 });
    assert.equal(p?.payload.data.messageId, first.messageId);
    assert.equal(p?.vapid.sub, web.subject);
    // Bob comes online: nothing is pushed while he is.
    const bobPhone = await open("bob", "phone");
    await ann.call("sendMessage", { conversationId, clientMsgId: "p2", text: "now you are" });
    await bobPhone.until((ev) => ev.some((e) => e.kind.case === "message" && e.kind.value.message?.clientMsgId === "p2"));
    await bobPhone.close();
    await new Promise((r) => setTimeout(r, 500));
    const third = await ann.call("sendMessage", { conversationId, clientMsgId: "p3", text: "gone again" });
    await until("the third push", () => pushesTo(bob.id).some((x) => x.payload.data.messageId === third.messageId));
    assert.deepEqual(pushesTo(bob.id).map((x) => x.payload.body), ["are you there?", "gone again"]);
    assert.deepEqual(web.problems, []);
    if (mode.bus === "kafka") {
      const routing = mesh.find((p) => p.name === "routing") ?? assert.fail("routing not running");
      assert.ok((await rpcCalls(routing.address, "client", "ListSessions")) >= 3, "routing looked the members' sessions up");
    }
  });

  it("a message read on another device before the push goes out is not pushed", async () => {
    const cat = await open("cat", "phone");
    const dan = await subscribe("dan");
    const { conversation } = await cat.call("getOrCreateDirectConversation", { peerId: user("dan") });
    const conversationId = conversation?.conversationId ?? "";
    // The provider throttles the first try for 2 s; Dan reads it on his laptop meanwhile.
    web.script.add(dan.id, { status: 429, headers: { "retry-after": "2" } });
    const m = await cat.call("sendMessage", { conversationId, clientMsgId: "r1", text: "read me elsewhere" });
    await until("the throttled try", () => web.requests.includes(dan.id));
    await dan.api.updateReceipt({ conversationId, kind: ReceiptKind.READ, seq: m.seq });
    await new Promise((r) => setTimeout(r, 2_500));
    const marker = await cat.call("sendMessage", { conversationId, clientMsgId: "r2", text: "marker" });
    await until("the marker", () => pushesTo(dan.id).some((x) => x.payload.data.messageId === marker.messageId));
    assert.deepEqual(pushesTo(dan.id).map((x) => x.payload.body), ["marker"]);
  });

  it("a muted conversation sends nothing; private previews carry generic text", async () => {
    const eve = await open("eve", "phone");
    const fay = await subscribe("fay");
    const { conversation } = await eve.call("getOrCreateDirectConversation", { peerId: user("fay") });
    const conversationId = conversation?.conversationId ?? "";
    await fay.api.muteConversation({ conversationId, mutedUntil: timestampFromMs(Date.now() + 3_600_000) });
    await eve.call("sendMessage", { conversationId, clientMsgId: "u1", text: "muted" });
    await new Promise((r) => setTimeout(r, 1_500));
    await fay.api.muteConversation({ conversationId });
    await fay.api.updatePrivacySettings({ showLastSeen: true, showPreviews: false });
    const m = await eve.call("sendMessage", { conversationId, clientMsgId: "u2", text: "secret plans" });
    await until("the unmuted push", () => pushesTo(fay.id).some((x) => x.payload.data.messageId === m.messageId));
    const bodies = pushesTo(fay.id).map((x) => [x.payload.title, x.payload.body, x.payload.badge]);
    assert.deepEqual(bodies, [["New message", "You have a new message", 2]]);
  });

  it("targets are listed and removed through the public API", async () => {
    const gus = await subscribe("gus");
    const listed = await gus.api.listPushTargets({});
    assert.equal(listed.targets.length, 1);
    await gus.api.removePushTarget({ targetId: listed.targets[0]?.targetId ?? "" });
    assert.deepEqual((await gus.api.listPushTargets({})).targets, []);
  });
});

after(() => web.stop());
