// Faults under traffic, cluster mode: kill -9 the message store and the router mid-stream and
// restart them; and with two message-store replicas, kill -9 the one that writes the conversation.
// The sender retries with the same client_msg_id until acknowledged; afterwards no acknowledged
// message is lost, none is duplicated in the history, and the online recipient has every message.
import assert from "node:assert/strict";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { startCluster, startService, stopCluster, type ClusterOptions, type ClusterProcess } from "../../cmd/cluster.js";
import { DEV_JWT_SECRET, PUBLIC_PORT, type ServiceName } from "../../cmd/services.js";
import { ChatSocket, FrameError } from "../../packages/client/src/websocket.js";
import { infraEnv } from "../support/infra.js";
import { rpcCalls } from "../support/metrics.js";
import { tokenFor } from "../support/modes.js";

const OFFSET = 8_000; // ports below the ephemeral range (32768+), apart from the other suites'
const TOTAL = 200;
/** Short seq leases, so a dead replica's conversations move to the other within seconds. */
const SEQ_LEASE_MS = 2000;

describe("faults under traffic (cluster)", () => {
  const opts: ClusterOptions = {
    env: { ...infraEnv(), CASSANDRA_KEYSPACE: "chat_faults", JWT_HS256_SECRET: DEV_JWT_SECRET, LOG_LEVEL: "warn" },
    portOffset: OFFSET,
    logDir: "var/test-logs/faults",
    busNamespace: "faults.",
    overrides: { "message-store": { SEQ_LEASE_MS: String(SEQ_LEASE_MS) } },
  };
  let cluster: ClusterProcess[] = [];
  const url = `ws://127.0.0.1:${PUBLIC_PORT + OFFSET}/ws`;
  const run = randomBytes(4).toString("hex");

  before(async () => {
    cluster = await startCluster(opts);
  });
  after(() => stopCluster(cluster));

  async function killAndRestart(name: ServiceName): Promise<void> {
    const i = cluster.findIndex((p) => p.name === name);
    const victim = cluster[i] ?? assert.fail(`${name} not running`);
    const exited = once(victim.child, "exit");
    victim.child.kill("SIGKILL");
    await exited;
    cluster[i] = await startService(name, opts);
  }

  /**
   * alice sends TOTAL messages to bob (user bobId), retrying each with its client_msg_id until acknowledged;
   * `fault` starts after the 60th. Then bob's history holds each acknowledged message once, at the
   * acknowledged seq, 1..TOTAL, and bob received every one live. Returns how many sends were retried.
   */
  async function sendThroughFault(alice: ChatSocket, bob: ChatSocket, bobId: string, fault: () => Promise<void>): Promise<number> {
    const { conversation } = await alice.call("getOrCreateDirectConversation", { peerId: bobId });
    const conversationId = conversation?.conversationId ?? "";
    const acked = new Map<string, bigint>();
    let retries = 0;
    let faults: Promise<void> | undefined;
    for (let i = 0; i < TOTAL; i++) {
      if (i === 60) faults = fault();
      for (;;) {
        try {
          const r = await alice.call("sendMessage", { conversationId, clientMsgId: `k${i}`, text: `msg ${i}` });
          acked.set(`k${i}`, r.seq);
          break;
        } catch (err) {
          if (!(err instanceof FrameError)) throw err;
          retries++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    await faults;
    assert.equal(acked.size, TOTAL);
    const history = await bob.call("getHistory", { conversationId, limit: 500 });
    assert.deepEqual(history.messages.map((m) => Number(m.seq)), Array.from({ length: TOTAL }, (_, i) => i + 1), "seqs 1..N, no gap, no duplicate");
    assert.deepEqual(history.messages.map((m) => m.clientMsgId).sort(), [...acked.keys()].sort(), "every acknowledged message once");
    for (const m of history.messages) assert.equal(acked.get(m.clientMsgId), m.seq, "the acknowledged seq is the stored one");
    await bob.until((ev) => new Set(ev.flatMap((e) => (e.kind.case === "message" ? [e.kind.value.message?.seq] : []))).size >= TOTAL, 60_000);
    return retries;
  }

  it("kill -9 of message-store and routing mid-stream loses no acknowledged message and duplicates none", async () => {
    const alice = await ChatSocket.connect({ url, token: await tokenFor(`alice-${run}`), deviceId: "phone" });
    const bob = await ChatSocket.connect({ url, token: await tokenFor(`bob-${run}`), deviceId: "phone" });
    const retries = await sendThroughFault(alice, bob, `bob-${run}`, async () => {
      await killAndRestart("message-store");
      await killAndRestart("routing");
    });
    assert.ok(retries > 0, "the faults were felt by the sender (it had to retry)");
    await alice.close();
    await bob.close();
  });

  it("two message-store replicas: the one without the conversation's lease passes appends on; kill -9 of the holder moves the conversation to it, losing and duplicating nothing", async () => {
    // The first replica holds every shard's lease; the second starts after it, with its own edge.
    const second = await startService("message-store", opts, 1);
    cluster.push(second);
    cluster.push(await startService("edge", { ...opts, overrides: { ...opts.overrides, edge: { MESSAGE_STORE_SERVICE_ADDR: second.address } } }, 1));
    const alice = await ChatSocket.connect({ url: `ws://127.0.0.1:${PUBLIC_PORT + OFFSET + 1}/ws`, token: await tokenFor(`carol-${run}`), deviceId: "phone" });
    const bob = await ChatSocket.connect({ url, token: await tokenFor(`dave-${run}`), deviceId: "phone" });
    const forwarded = () => rpcCalls(second.address, "client", "AppendMany");
    let forwardedBefore = 0;
    const retries = await sendThroughFault(alice, bob, `dave-${run}`, async () => {
      forwardedBefore = await forwarded();
      // The holder dies without giving its leases up: the second replica takes them once they run out.
      const i = cluster.findIndex((p) => p.name === "message-store" && p.instance === 0);
      const holder = cluster[i] ?? assert.fail("message-store not running");
      const exited = once(holder.child, "exit");
      holder.child.kill("SIGKILL");
      await exited;
      // Back under its name (bob's edge reads history through it), after the second took over.
      await new Promise((r) => setTimeout(r, 2 * SEQ_LEASE_MS));
      cluster[i] = await startService("message-store", opts);
    });
    assert.ok(forwardedBefore > 0, "alice's appends reached the second replica and were passed on to the holder");
    assert.ok(retries > 0, "the holder's death was felt by the sender (it had to retry)");
    await alice.close();
    await bob.close();
  });
});
