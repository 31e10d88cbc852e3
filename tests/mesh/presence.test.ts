// Presence and typing driven through the public API (WebSocket frames and Connect calls), in both
// modes: a watcher sees a contact come online and go offline (clean close, silent network loss, a
// Connect stream ending) within the bound, with last seen when the device was last heard from;
// non-contacts are refused; a hidden last seen stays hidden from others; typing reaches the other
// members' devices only, is never stored, is rate-limited and lapses.
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { stopCluster, type ClusterProcess } from "../../cmd/cluster.js";
import { PresenceState } from "../../gen/chat/api/v1/enums_pb.js";
import type { Event, PresenceEvent, TypingEvent } from "../../gen/chat/api/v1/events_pb.js";
import type { ChatSocket, FrameError } from "../../packages/client/src/websocket.js";
import { missing } from "../support/metrics.js";
import { addressOf, connectClient, modes, runClients, tokenFor } from "../support/modes.js";

/** Short timers so transitions happen within a test's patience; the bounds below derive from them. */
const SETTINGS = { WS_PING_MS: "1000", SESSION_REFRESH_MS: "1000", PRESENCE_TTL_MS: "3000", PRESENCE_SWEEP_MS: "200", TYPING_TTL_MS: "1500", TYPING_PER_SECOND: "5", TYPING_BURST: "5" };
const PING_MS = 1000;
/** A device that stops answering is dropped within two ping intervals; the change then goes out at once. */
const SILENT_BOUND_MS = 2 * PING_MS + 1500;
/** A clean close reaches watchers at once (allowing for a loaded machine). */
const CLOSE_BOUND_MS = 1500;

const presenceOf = (events: Event[], userId: string): PresenceEvent[] =>
  events.flatMap((e) => (e.kind.case === "presence" && e.kind.value.presence?.userId === userId ? [e.kind.value] : []));
const typingOf = (events: Event[]): TypingEvent[] => events.flatMap((e) => (e.kind.case === "typing" ? [e.kind.value] : []));
const ms = (t: { seconds: bigint; nanos: number } | undefined) => (t === undefined ? undefined : Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6));

/** Resolves with the time the watcher got `userId` in `state` (after `from` events). */
async function stateSeen(watcher: ChatSocket, userId: string, state: PresenceState, from: number, timeoutMs: number): Promise<{ at: number; event: PresenceEvent }> {
  let found: PresenceEvent | undefined;
  await watcher.until((ev) => (found = presenceOf(ev.slice(from), userId).find((p) => p.presence?.state === state)) !== undefined, timeoutMs);
  return { at: Date.now(), event: found as PresenceEvent };
}

for (const mode of modes("presence", 2_000)) describe(mode.name, () => {
  let mesh: ClusterProcess[] = [];
  const { user, open, closeAll } = runClients(mode);
  const direct = async (a: ChatSocket, peer: string) => (await a.call("getOrCreateDirectConversation", { peerId: user(peer) })).conversation?.conversationId ?? assert.fail("no conversation");

  before(async () => {
    mesh = await mode.start({ LOG_LEVEL: "warn", ...SETTINGS });
  });
  after(async () => {
    await closeAll();
    await stopCluster(mesh);
  });

  it("a watcher sees a contact come online and go offline on a clean close, with last seen", async (t) => {
    const ann = await open("ann");
    await direct(ann, "ben");
    const first = await ann.call("watchPresence", { userIds: [user("ben")] });
    assert.deepEqual(first.presences.map((p) => [p.userId, p.state, p.lastSeen]), [[user("ben"), PresenceState.OFFLINE, undefined]], "never seen: offline, no last seen");
    const from = ann.events.length;
    const ben = await open("ben", "phone");
    await stateSeen(ann, user("ben"), PresenceState.ONLINE, from, 3_000);
    const closedAt = Date.now();
    await ben.close();
    const { at, event } = await stateSeen(ann, user("ben"), PresenceState.OFFLINE, from, 5_000);
    assert.ok(at - closedAt <= CLOSE_BOUND_MS, `offline seen ${at - closedAt} ms after the close`);
    t.diagnostic(`offline seen ${at - closedAt} ms after a clean close`);
    const lastSeen = ms(event.presence?.lastSeen) ?? assert.fail("last seen shown");
    assert.ok(Math.abs(lastSeen - closedAt) <= 1_000, `last seen ${lastSeen - closedAt} ms from the close`);
    // Unwatched: nothing more.
    await ann.call("unwatchPresence", { userIds: [user("ben")] });
    const quiet = ann.events.length;
    const again = await open("ben", "laptop");
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(presenceOf(ann.events.slice(quiet), user("ben")).length, 0, "no event after unwatching");
    await again.close();
  });

  it("a device that goes silent (stops reading, never closes) is offline within two ping intervals, last seen when last heard from", async (t) => {
    const ann = await open("ann", "tablet");
    await direct(ann, "cal");
    const cal = await open("cal", "phone");
    await ann.call("watchPresence", { userIds: [user("cal")] });
    await new Promise((r) => setTimeout(r, PING_MS)); // a ping answered
    const from = ann.events.length;
    // The network goes: cal's socket is no longer read, so pings go unanswered; nothing is closed.
    const silentAt = Date.now();
    (cal.ws as unknown as { _socket: Socket })._socket.pause();
    const { at, event } = await stateSeen(ann, user("cal"), PresenceState.OFFLINE, from, SILENT_BOUND_MS + 5_000);
    assert.ok(at - silentAt <= SILENT_BOUND_MS, `offline seen ${at - silentAt} ms after the device went silent (bound ${SILENT_BOUND_MS})`);
    t.diagnostic(`offline seen ${at - silentAt} ms after the device went silent (WS_PING_MS ${PING_MS})`);
    const lastSeen = ms(event.presence?.lastSeen) ?? assert.fail("last seen shown");
    assert.ok(lastSeen <= silentAt + 100 && lastSeen >= silentAt - 2 * PING_MS, `last seen ${lastSeen - silentAt} ms from when it went silent`);
    cal.ws.terminate();
  });

  it("a Connect Subscribe stream keeps its user online; when it ends the user goes offline", async () => {
    const ann = await open("ann", "watch");
    await direct(ann, "dot");
    await ann.call("watchPresence", { userIds: [user("dot")] });
    const from = ann.events.length;
    const dot = connectClient(mode, await tokenFor(user("dot")), "desktop");
    const abort = new AbortController();
    const stream = (async () => {
      try {
        for await (const _ of dot.subscribe({}, { signal: abort.signal })) void _;
      } catch {
        // aborted
      }
    })();
    await stateSeen(ann, user("dot"), PresenceState.ONLINE, from, 3_000);
    abort.abort();
    await stream;
    await stateSeen(ann, user("dot"), PresenceState.OFFLINE, from, 5_000);
  });

  it("presence is refused for non-contacts, and a hidden last seen is shown to its owner only", async () => {
    const ann = await open("ann", "desk");
    await assert.rejects(ann.call("watchPresence", { userIds: [user("stranger")] }), (err: FrameError) => err.code === "permission_denied");
    await assert.rejects(ann.call("getPresence", { userIds: [user("stranger")] }), (err: FrameError) => err.code === "permission_denied");
    await direct(ann, "eve");
    const eve = await open("eve", "phone");
    await eve.call("updatePrivacySettings", { showLastSeen: false, showPreviews: true });
    await ann.call("watchPresence", { userIds: [user("eve")] });
    const from = ann.events.length;
    await eve.close();
    const { event } = await stateSeen(ann, user("eve"), PresenceState.OFFLINE, from, 5_000);
    assert.equal(event.presence?.lastSeen, undefined, "a watcher does not see a hidden last seen");
    const others = await connectClient(mode, await tokenFor(user("ann")), "desk").getPresence({ userIds: [user("eve")] });
    assert.equal(others.presences[0]?.lastSeen, undefined);
    const own = await connectClient(mode, await tokenFor(user("eve")), "laptop").getPresence({ userIds: [user("eve")] });
    assert.equal(own.presences[0]?.state, PresenceState.OFFLINE);
    assert.ok(own.presences[0]?.lastSeen !== undefined, "the user sees their own last seen");
  });

  it("typing reaches the other members' devices, not the typer's, is never stored, is rate-limited and lapses", async () => {
    const [fay1, fay2, gus, hal, ivy] = [await open("fay", "phone"), await open("fay", "laptop"), await open("gus"), await open("hal"), await open("ivy")];
    const { conversation } = await fay1.call("createGroup", { title: "typing", memberIds: [user("gus"), user("hal")] });
    const conversationId = conversation?.conversationId ?? assert.fail("no group");
    const t0 = Date.now();
    await fay1.call("setTyping", { conversationId, typing: true });
    for (const s of [gus, hal]) await s.until((ev) => typingOf(ev).some((t) => t.typing), 3_000);
    const shown = typingOf(gus.events).find((t) => t.typing) ?? assert.fail();
    assert.deepEqual([shown.conversationId, shown.userId], [conversationId, user("fay")]);
    const expires = ms(shown.expiresAt) ?? assert.fail("expires_at");
    assert.ok(expires - t0 >= 1_000 && expires - t0 <= 2_500, `expires ${expires - t0} ms after the call (TYPING_TTL_MS 1500)`);
    // It lapses without a refresh: a typing=false follows.
    await gus.until((ev) => typingOf(ev).some((t) => !t.typing), 4_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(typingOf(fay2.events).length, 0, "the typer's own devices get nothing");
    assert.equal(typingOf(ivy.events).length, 0, "a non-member gets nothing");
    // An explicit stop goes out at once.
    await fay1.call("setTyping", { conversationId, typing: true });
    await hal.until((ev) => typingOf(ev).filter((t) => t.typing).length >= 2, 3_000);
    await fay1.call("setTyping", { conversationId, typing: false });
    await hal.until((ev) => typingOf(ev).filter((t) => !t.typing).length >= 2, 1_000);
    // Never stored: the history holds the group's creation only.
    const history = await gus.call("getHistory", { conversationId, limit: 50 });
    assert.deepEqual(history.messages.map((m) => m.content.case), ["system"]);
    // Rate limit per sender (5/s, burst 5) and membership.
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => fay2.call("setTyping", { conversationId, typing: true })));
    assert.ok(results.some((r) => r.status === "rejected" && (r.reason as FrameError).code === "resource_exhausted"), "floods are refused");
    await assert.rejects(ivy.call("setTyping", { conversationId, typing: true }), (err: FrameError) => err.code === "permission_denied");
    await assert.rejects(ivy.call("setTyping", { conversationId: "c_missing", typing: true }), (err: FrameError) => err.code === "not_found");
  });

  it("presence serves its fan-out counters on /metrics", async () => {
    const text = await (await fetch(`http://${addressOf(mesh, "presence")}/metrics`)).text();
    for (const name of ["presence_events_total", "presence_typing_events_total"]) assert.equal(missing(text, { name, positive: true }), undefined);
  });
});
