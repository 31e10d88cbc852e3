// One contract for the message store, run against both drivers: embedded (PGlite, persisted in a
// temporary folder) and Cassandra (the real server).
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { Code, type ConnectError } from "@connectrpc/connect";
import { migrateCql, openCassandra, type CassandraSession } from "../../../packages/runtime/src/cassandra.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { openPglite } from "../../../packages/runtime/src/sql/pglite.js";
import { KeyedSerialQueue } from "../../../packages/runtime/src/serial.js";
import { bucketOf } from "../src/domain/sequencing.js";
import { createCassandraMessageStore } from "../src/store/cassandra.js";
import { encodeContent } from "../src/store/codec.js";
import { createEmbeddedMessageStore } from "../src/store/embedded.js";
import { createSeqLeases, leaseTiming, SHARDS, shardOf, type SeqLeases } from "../src/store/leases.js";
import { cqlMigrations, sqlMigrations } from "../src/store/migrations.js";
import type { MessageStore, NewMessage } from "../src/store/port.js";
import { scratchDir } from "../../../tests/support/scratch.js";

interface Driver {
  /** A store of the one replica that writes every conversation here. */
  open(): Promise<MessageStore>;
  close(): Promise<void>;
}

const text = (conversationId: string, senderId: string, clientMsgId: string, body = clientMsgId): NewMessage => ({
  conversationId,
  senderId,
  clientMsgId,
  senderDeviceId: "device-1",
  messageId: randomUUID(),
  serverTime: new Date(),
  content: { case: "text", value: body },
});

function messageStoreContract(name: string, driver: () => Promise<Driver>): void {
  describe(`message store contract: ${name}`, () => {
    let d: Driver;
    const conv = () => `c-${randomBytes(6).toString("hex")}`;
    after(async () => d?.close());

    it("gives seqs 1, 2, 3, ... and reads them back in order", async () => {
      d = await driver();
      const store = await d.open();
      const c = conv();
      for (let i = 1; i <= 5; i++) {
        const r = await store.append(text(c, "alice", `m${i}`));
        assert.deepEqual([r.created, Number(r.message.seq)], [true, i]);
      }
      assert.equal(await store.lastSeq(c), 5);
      assert.deepEqual((await store.range(c, 2, 4)).map((m) => [Number(m.seq), m.content.value]), [
        [2, "m2"],
        [3, "m3"],
        [4, "m4"],
      ]);
      assert.equal(await store.lastSeq(conv()), 0);
    });

    it("a retry with the same client_msg_id returns the stored message and stores no copy", async () => {
      const store = await d.open();
      const c = conv();
      const first = await store.append(text(c, "alice", "same", "hello"));
      const again = await store.append(text(c, "alice", "same", "hello (retry)"));
      assert.equal(again.created, false);
      assert.deepEqual([Number(again.message.seq), again.message.messageId, again.message.content.value], [1, first.message.messageId, "hello"]);
      const other = await store.append(text(c, "bob", "same"));
      assert.deepEqual([other.created, Number(other.message.seq)], [true, 2], "the key is per sender");
      assert.equal(await store.lastSeq(c), 2);
      assert.equal((await store.findStored(c, "alice", "same"))?.messageId, first.message.messageId, "a retry is found before it is queued");
      assert.equal(await store.findStored(c, "alice", "never"), undefined);
    });

    it("a batch gets consecutive seqs in order, answers repeats with the first, and crosses partitions", async () => {
      const store = await d.open();
      const c = conv();
      await store.append(text(c, "alice", "before"));
      const batch = Array.from({ length: 12 }, (_, i) => text(c, i % 2 === 0 ? "alice" : "bob", `b${i}`));
      const results = await store.appendBatch([...batch, text(c, "alice", "b0", "repeat"), text(c, "alice", "before")]);
      assert.deepEqual(results.slice(0, 12).map((r) => [r.created, Number(r.message.seq)]), batch.map((_, i) => [true, i + 2]));
      assert.deepEqual([results[12]?.created, Number(results[12]?.message.seq), results[12]?.message.content.value], [false, 2, "b0"]);
      assert.deepEqual([results[13]?.created, Number(results[13]?.message.seq)], [false, 1]);
      assert.equal(await store.lastSeq(c), 13);
      assert.deepEqual((await store.range(c, 1, 13)).map((m) => m.content.value), ["before", ...batch.map((m) => m.content.value)]);
    });

    it("messages at the size limit, many at once, are stored and read back whole", async () => {
      const store = await d.open();
      // 100,000 characters of 4 bytes each in UTF-8: 400 KB per message, far past Cassandra's
      // batch size limit (50 KiB by default), written while small messages are written too.
      const big = (n: number) => String.fromCodePoint(0x1f600 + n).repeat(100_000);
      const convs = Array.from({ length: 6 }, conv);
      const results = await Promise.all(
        convs.flatMap((c, i) => [
          store.appendBatch([text(c, "alice", "big1", big(i)), text(c, "bob", "small", "hi"), text(c, "alice", "big2", big(i + 1))]),
          store.afterAppend(c, 3, ["alice", "bob"], "alice"),
        ]),
      );
      assert.equal(results.length, 12);
      for (const [i, c] of convs.entries()) {
        const stored = await store.range(c, 1, 3);
        assert.deepEqual(stored.map((m) => [Number(m.seq), m.content.case === "text" ? m.content.value.length : -1]), [
          [1, 200_000],
          [2, 2],
          [3, 200_000],
        ], "each big message is 100,000 characters (200,000 UTF-16 units)");
        assert.equal(stored[0]?.content.value, big(i));
      }
    });

    it("concurrent appends through the per-conversation queue are gap-free and unique", async () => {
      const store = await d.open();
      const queue = new KeyedSerialQueue();
      const c = conv();
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => queue.run(c, () => store.append(text(c, `u${i % 4}`, `k${i}`)))));
      assert.deepEqual(results.map((r) => Number(r.message.seq)).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1));
      assert.equal((await store.range(c, 1, 40)).length, 40);
    });

    it("raises receipt watermarks, never lowers them, even under concurrent reports", async () => {
      const store = await d.open();
      const c = conv();
      const first = await store.raiseWatermarks(c, "bob", { deliveredSeq: 5, readSeq: 0 });
      assert.deepEqual(first, { watermarks: { deliveredSeq: 5, readSeq: 0 }, changed: true });
      const read = await store.raiseWatermarks(c, "bob", { deliveredSeq: 3, readSeq: 7 });
      assert.deepEqual(read.watermarks, { deliveredSeq: 7, readSeq: 7 }, "reading marks delivered too");
      assert.equal((await store.raiseWatermarks(c, "bob", { deliveredSeq: 2, readSeq: 1 })).changed, false);
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.raiseWatermarks(c, "carl", { deliveredSeq: 20 - i, readSeq: (i * 7) % 20 })));
      const all = await store.watermarks(c);
      assert.deepEqual(all.get("carl"), { deliveredSeq: 20, readSeq: 19 });
      assert.deepEqual(all.get("bob"), { deliveredSeq: 7, readSeq: 7 });
    });

    it("keeps each member's inbox at the highest seq of every conversation", async () => {
      const store = await d.open();
      const c1 = conv();
      const c2 = conv();
      const user = `u-${randomBytes(4).toString("hex")}`;
      await store.afterAppend(c1, 3, [user, "other"], "other");
      await store.afterAppend(c2, 1, [user], "");
      await store.afterAppend(c1, 5, [user], user);
      await store.afterAppend(c1, 4, [user], user);
      assert.deepEqual([...(await store.inbox(user))].sort(), [
        [c1, 5],
        [c2, 1],
      ].sort());
      assert.equal((await store.inbox("nobody-" + user)).size, 0);
      assert.deepEqual((await store.watermarks(c1)).get(user), { deliveredSeq: 5, readSeq: 5 }, "the sender has read its own message");
    });

    it("pages across partition buckets", async () => {
      const store = await d.open();
      const c = conv();
      for (let i = 1; i <= 25; i++) await store.append(text(c, "alice", `b${i}`));
      assert.equal(await store.lastSeq(c), 25);
      assert.deepEqual((await store.range(c, 8, 22)).map((m) => Number(m.seq)), Array.from({ length: 15 }, (_, i) => i + 8));
    });
  });
}

messageStoreContract(
  "embedded (PGlite)",
  async () => {
    const dir = scratchDir("ms-contract");
    const sql = await openPglite(dir);
    await migrateSql(sql, "message-store", sqlMigrations);
    return { open: async () => createEmbeddedMessageStore(sql), close: () => sql.close() };
  },
);

messageStoreContract(
  "cassandra",
  async () => {
    const contactPoints = (process.env["CASSANDRA_CONTACT_POINTS"] ?? assert.fail("CASSANDRA_CONTACT_POINTS is not set: run through 'make test' (real Cassandra required)")).split(",");
    const session: CassandraSession = await openCassandra({ contactPoints, localDataCenter: process.env["CASSANDRA_LOCAL_DC"] ?? "datacenter1", keyspace: "chat_contract" });
    await migrateCql(session, "message-store", cqlMigrations);
    // One replica holding every shard's seq lease (two replicas: the suite below).
    const leases = createSeqLeases(session.client, { instance: `contract-${randomBytes(4).toString("hex")}`, timing: leaseTiming(1500) });
    await leases.start("127.0.0.1:1");
    return {
      open: async () => createCassandraMessageStore(session.client, { leases, bucketSize: 10 }),
      close: async () => {
        await leases.close();
        await session.close();
      },
    };
  },
);

describe("embedded message store persistence", () => {
  it("keeps messages across a restart of the process", async () => {
    const dir = scratchDir("ms-persist");
    const first = await openPglite(dir);
    await migrateSql(first, "message-store", sqlMigrations);
    await createEmbeddedMessageStore(first).append(text("c-persist", "alice", "m1", "still here"));
    await first.close();
    const second = await openPglite(dir);
    await migrateSql(second, "message-store", sqlMigrations);
    const store = createEmbeddedMessageStore(second);
    assert.deepEqual((await store.range("c-persist", 1, 1)).map((m) => m.content.value), ["still here"]);
    assert.equal(Number((await store.append(text("c-persist", "alice", "m2"))).message.seq), 2);
    await second.close();
  });
});

describe("cassandra seq leases: one replica writes each conversation", () => {
  const timing = leaseTiming(1500);
  let session: CassandraSession;
  const opened: SeqLeases[] = [];
  after(async () => {
    await Promise.all(opened.map((l) => l.close()));
    await session?.close();
  });

  /**
   * A replica's leases and store over a client whose every request (`execute` and `batch`) first
   * passes `gate` with its query (a batch: "BATCH" and its queries, a line each; it may hold the
   * request up or fail it); `kill()` fails every request from then
   * on (a dead or cut-off process).
   */
  async function replica(instance: string, address: string, gate: (query: string) => Promise<void> = async () => undefined, storeOptions: { settleMs?: number } = {}) {
    let dead = false;
    const pass = async (query: string) => {
      if (dead) throw new Error("this replica is dead");
      await gate(query);
    };
    const client = new Proxy(session.client, {
      get: (target, prop, receiver) => {
        if (prop === "execute") return async (...args: Parameters<typeof target.execute>) => (await pass(String(args[0])), target.execute(...args));
        if (prop === "batch") return async (...args: Parameters<typeof target.batch>) => (await pass(`BATCH\n${args[0].map((q) => (typeof q === "string" ? q : q.query)).join("\n")}`), target.batch(...args));
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const leases = createSeqLeases(client, { instance, timing });
    opened.push(leases);
    await leases.start(address);
    return { leases, store: createCassandraMessageStore(client, { leases, bucketSize: 10, ...storeOptions }), kill: () => (dead = true) };
  }
  const conv = () => `c-${randomBytes(6).toString("hex")}`;
  const values = async (store: MessageStore, c: string, n: number) => (await store.range(c, 1, n)).map((m) => m.content.value);

  it("a second replica writes nothing where the first holds the lease: it names the first, and takes over gap-free once the first stops", async () => {
    const contactPoints = (process.env["CASSANDRA_CONTACT_POINTS"] ?? assert.fail("CASSANDRA_CONTACT_POINTS is not set: run through 'make test' (real Cassandra required)")).split(",");
    session = await openCassandra({ contactPoints, localDataCenter: process.env["CASSANDRA_LOCAL_DC"] ?? "datacenter1", keyspace: "chat_leases" });
    await migrateCql(session, "message-store", cqlMigrations);
    const a = await replica(`a-${randomBytes(3).toString("hex")}`, "10.0.0.1:9102");
    const b = await replica(`b-${randomBytes(3).toString("hex")}`, "10.0.0.2:9102");
    const c = conv();
    assert.deepEqual(a.store.writer(c), { kind: "self" });
    assert.deepEqual(b.store.writer(c), { kind: "peer", address: "10.0.0.1:9102" });
    for (let i = 1; i <= 3; i++) await a.store.append(text(c, "alice", `m${i}`));
    await assert.rejects(b.store.append(text(c, "alice", "from-b")), (err: ConnectError) => err.code === Code.Unavailable);
    assert.deepEqual(await values(a.store, c, 10), ["m1", "m2", "m3"], "the refused append wrote nothing");

    await a.leases.close(); // gives every shard up: b takes them in its next round, without waiting for expiry
    await until(() => b.store.writer(c).kind === "self", 2 * timing.renewEveryMs + 1000);
    await assert.rejects(a.store.append(text(c, "alice", "late")), (err: ConnectError) => err.code === Code.Unavailable);
    for (let i = 4; i <= 6; i++) assert.equal(Number((await b.store.append(text(c, "bob", `m${i}`))).message.seq), i);
    assert.deepEqual(await values(b.store, c, 10), ["m1", "m2", "m3", "m4", "m5", "m6"]);
    assert.equal((await b.store.append(text(c, "alice", "m2"))).created, false, "a retry of the first replica's message is found");
    await b.leases.close();
  });

  it("a holder that can no longer renew stops writing before anyone else may start, and is taken over after expiry plus the margin", async () => {
    const a = await replica(`a-${randomBytes(3).toString("hex")}`, "10.0.0.3:9102");
    const b = await replica(`b-${randomBytes(3).toString("hex")}`, "10.0.0.4:9102");
    const c = await someConversation((id) => a.store.writer(id).kind === "self");
    await a.store.append(text(c, "alice", "m1"));
    a.kill();
    const start = performance.now();
    let aStopped = 0;
    let bStarted = 0;
    while (bStarted === 0 && performance.now() - start < timing.leaseMs + 3 * timing.marginMs + 2000) {
      const aValid = a.leases.tenure(c) !== undefined;
      const bValid = b.leases.tenure(c) !== undefined;
      assert.ok(!(aValid && bValid), "never two writers at once");
      if (!aValid && aStopped === 0) aStopped = performance.now();
      if (bValid) bStarted = performance.now();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(aStopped > 0 && bStarted > 0, "the dead holder's shard was taken over");
    assert.ok(bStarted - aStopped >= 2 * timing.marginMs - 100, `taken over ${Math.round(bStarted - aStopped)} ms after the holder stopped: at least twice the margin`);
    assert.equal(Number((await b.store.append(text(c, "bob", "m2"))).message.seq), 2, "the new holder reads the last seq before writing");
    await b.leases.close();
  });

  it("a replica restarted under the same name takes its shards back at once", async () => {
    const name = `a-${randomBytes(3).toString("hex")}`;
    const a = await replica(name, "10.0.0.5:9102");
    const c = await someConversation((id) => a.store.writer(id).kind === "self");
    await a.store.append(text(c, "alice", "m1"));
    a.kill();
    const again = await replica(name, "10.0.0.6:9102");
    assert.deepEqual(again.store.writer(c), { kind: "self" }, "no wait for the old life's lease");
    assert.equal(Number((await again.store.append(text(c, "alice", "m2"))).message.seq), 2);
    await again.leases.close();
  });

  it("a write that waits behind a slow batch until its tenure ended is refused, not sent", async () => {
    // Lease requests can be cut off, and writes held up.
    const cut = { leases: false, writes: undefined as Promise<void> | undefined };
    let release: () => void = () => undefined;
    const { leases, store } = await replica(`a-${randomBytes(3).toString("hex")}`, "10.0.0.7:9102", async (query) => {
      if (query.includes("seq_leases") && cut.leases) throw new Error("cut off");
      if (cut.writes !== undefined && !query.includes("seq_leases") && !query.startsWith("SELECT")) await cut.writes;
    });
    const c = await someConversation((id) => store.writer(id).kind === "self");
    const other = await someConversation((id) => store.writer(id).kind === "self" && id !== c);
    await store.append(text(c, "alice", "m1"));
    // m2's first write is held up in flight; w1's waits behind it while the lease runs out.
    cut.writes = new Promise((r) => (release = r));
    const slow = store.append(text(c, "alice", "m2"));
    await new Promise((r) => setTimeout(r, 50));
    const waiting = store.append(text(other, "bob", "w1"));
    cut.leases = true;
    await until(() => leases.tenure(other) === undefined, timing.leaseMs);
    release();
    const refused = (err: ConnectError) => err.code === Code.Unavailable;
    await assert.rejects(waiting, refused, "w1 was refused when its batch was sent");
    await assert.rejects(slow, refused, "m2's message write, queued after the lease ran out, was refused too");
    assert.deepEqual(await values(store, other, 5), [], "nothing of w1 was written");
    assert.deepEqual(await values(store, c, 5), ["m1"], "m2 was not written");
    await leases.close();
  });

  it("a first attempt received while the replica writes the conversation is answered without a read; elsewhere, late, or unmarked it is read", async () => {
    const reads = { a: 0, b: 0 };
    const counting = (who: "a" | "b") => async (query: string) => {
      if (query.includes("FROM message_idempotency")) reads[who]++;
    };
    const a = await replica(`a-${randomBytes(3).toString("hex")}`, "10.0.0.8:9102", counting("a"));
    // The shards of the replicas killed above are free once their leases ran out.
    await until(() => Array.from({ length: SHARDS * 20 }, (_, i) => `probe-${i}`).some((id) => a.store.writer(id).kind === "self"), timing.leaseMs + 2 * timing.marginMs + 2000);
    const c = await someConversation((id) => a.store.writer(id).kind === "self");
    const m1 = await a.store.append(text(c, "alice", "m1")); // the conversation's first here: looked up
    assert.equal(reads.a, 1);
    // Edges' clocks may be 2 s apart from the store's: a first attempt counts once received that much after the store began writing the conversation.
    await new Promise((r) => setTimeout(r, 2_100));
    assert.equal(await a.store.findStored(c, "alice", "m2", Date.now()), undefined);
    assert.equal(reads.a, 1, "a first attempt received now is not looked up");
    assert.equal((await a.store.findStored(c, "alice", "m1", Date.now()))?.messageId, m1.message.messageId, "one stored here is remembered");
    assert.equal(reads.a, 1);
    assert.equal(await a.store.findStored(c, "alice", "m3", Date.now() - 120_000), undefined);
    assert.equal(reads.a, 2, "one received two minutes ago is looked up");
    assert.equal(await a.store.findStored(c, "alice", "m3"), undefined);
    assert.equal(reads.a, 3, "an unmarked send is looked up");

    const b = await replica(`b-${randomBytes(3).toString("hex")}`, "10.0.0.9:9102", counting("b"));
    await a.leases.close();
    await until(() => b.store.writer(c).kind === "self", 2 * timing.renewEveryMs + 1000);
    assert.equal((await b.store.findStored(c, "alice", "m1", Date.now()))?.messageId, m1.message.messageId, "the next writer looks a first attempt up");
    assert.equal(reads.b, 1);
    await b.leases.close();
  });

  it("a write the server fails is made again while the tenure holds: the batch is stored whole and gap-free, however its rows were split", async () => {
    // Counting batches from `armed` on, the second fails (it never reaches the server).
    let batches: number | undefined;
    const a = await replica(`a-${randomBytes(3).toString("hex")}`, "10.0.0.10:9102", async (query) => {
      if (query.startsWith("BATCH") && batches !== undefined && batches++ === 1) throw new Error("injected: this request failed");
    });
    await until(() => Array.from({ length: SHARDS * 20 }, (_, i) => `probe-${i}`).some((id) => a.store.writer(id).kind === "self"), timing.leaseMs + 2 * timing.marginMs + 2000);
    const c = await someConversation((id) => a.store.writer(id).kind === "self");
    // Four messages of 12,000 characters: their idempotency rows go in one batch, the messages in
    // two (32 KiB of values a batch), and the first of those two fails while the second is stored.
    const big = (i: number) => text(c, "alice", `big-${i}`, `${i}`.repeat(12_000));
    batches = 0;
    const stored = await a.store.appendBatch([1, 2, 3, 4].map(big));
    assert.ok((batches ?? 0) > 3, `the failed batch was made again (${batches} batches)`);
    assert.deepEqual(stored.map((r) => [Number(r.message.seq), r.created]), [[1, true], [2, true], [3, true], [4, true]]);
    assert.deepEqual((await a.store.range(c, 1, 10)).map((m) => [Number(m.seq), m.clientMsgId, m.content.case === "text" ? m.content.value.length : 0]), [1, 2, 3, 4].map((i) => [i, `big-${i}`, 12_000]));
    assert.equal(Number((await a.store.append(text(c, "bob", "after"))).message.seq), 5);
    await a.leases.close();
  });

  it("a write that keeps failing is refused, and the conversation waits for it to settle before its last seq is read again", async () => {
    const settleMs = 400;
    const broken = { messages: false };
    const a = await replica(
      `a-${randomBytes(3).toString("hex")}`,
      "10.0.0.11:9102",
      async (query) => {
        if (broken.messages && query.includes("INSERT INTO messages")) throw new Error("injected: this request failed");
      },
      { settleMs },
    );
    await until(() => Array.from({ length: SHARDS * 20 }, (_, i) => `probe-${i}`).some((id) => a.store.writer(id).kind === "self"), timing.leaseMs + 2 * timing.marginMs + 2000);
    const c = await someConversation((id) => a.store.writer(id).kind === "self");
    await a.store.append(text(c, "alice", "m1"));
    broken.messages = true;
    await assert.rejects(a.store.append(text(c, "alice", "m2")), /injected/, "refused once every attempt failed");
    broken.messages = false;
    const settling = (err: ConnectError) => err.code === Code.Unavailable && /reads its state again/.test(err.message);
    await assert.rejects(a.store.append(text(c, "bob", "m3")), settling, "another append waits for the failed one to settle");
    await assert.rejects(a.store.findStored(c, "alice", "m2"), settling, "so does the failed one's retry");
    await new Promise((r) => setTimeout(r, settleMs));
    const retried = await a.store.append(text(c, "alice", "m2"));
    assert.deepEqual([Number(retried.message.seq), retried.created], [2, true], "the retry is stored at the next seq: no gap");
    assert.deepEqual((await a.store.range(c, 1, 10)).map((m) => m.clientMsgId), ["m1", "m2"]);
    await a.leases.close();
  });

  it("a message stored without its idempotency row (its writes cut short, then its writer gone; a row naming no batch, as before batch_first_seq) is that message to a retry at the next writer, not a new one", async () => {
    const a = await replica(`a-${randomBytes(3).toString("hex")}`, "10.0.0.12:9102");
    const b = await replica(`b-${randomBytes(3).toString("hex")}`, "10.0.0.13:9102");
    await until(() => Array.from({ length: SHARDS * 20 }, (_, i) => `probe-${i}`).some((id) => a.store.writer(id).kind === "self"), timing.leaseMs + 2 * timing.marginMs + 2000);
    const c = await someConversation((id) => a.store.writer(id).kind === "self");
    await a.store.append(text(c, "alice", "m1"));
    // m2's message row landed, its idempotency row did not (the two go in one request, not atomically).
    const m2 = text(c, "alice", "m2");
    await session.client.execute(
      "INSERT INTO messages (conversation_id, bucket, seq, message_id, client_msg_id, sender_id, sender_device_id, server_time, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      [c, bucketOf(2, 10), 2, m2.messageId, m2.clientMsgId, m2.senderId, m2.senderDeviceId, m2.serverTime, Buffer.from(encodeContent(m2.content))],
      { prepare: true },
    );
    await a.leases.close();
    await until(() => b.store.writer(c).kind === "self", 2 * timing.renewEveryMs + 1000);
    // The retry, looked up first (no idempotency row: not found), then appended as the edge does.
    assert.equal(await b.store.findStored(c, "alice", "m2"), undefined);
    const retried = await b.store.appendBatch([text(c, "alice", "m2")], { checked: true });
    assert.deepEqual(retried.map((r) => [Number(r.message.seq), r.message.messageId, r.created]), [[2, m2.messageId, false]]);
    assert.equal((await b.store.findStored(c, "alice", "m2"))?.messageId, m2.messageId, "its idempotency row is written again");
    assert.equal(Number((await b.store.append(text(c, "bob", "m3"))).message.seq), 3);
    assert.deepEqual((await b.store.range(c, 1, 10)).map((m) => m.clientMsgId), ["m1", "m2", "m3"]);
    await b.leases.close();
  });

  it("a new writer writes again only the idempotency rows of the last part of the last batch (what a cut-short write can have left out), not the last 100 messages'", async () => {
    let idempotencyWrites = 0;
    const counting = async (query: string) => {
      idempotencyWrites += query.split("\n").filter((q) => q.includes("INSERT INTO message_idempotency")).length;
    };
    const a = await replica(`a-${randomBytes(3).toString("hex")}`, "10.0.0.14:9102");
    const b = await replica(`b-${randomBytes(3).toString("hex")}`, "10.0.0.15:9102", counting);
    await until(() => Array.from({ length: SHARDS * 20 }, (_, i) => `probe-${i}`).some((id) => a.store.writer(id).kind === "self"), timing.leaseMs + 2 * timing.marginMs + 2000);
    const c = await someConversation((id) => a.store.writer(id).kind === "self");
    const batch = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => text(c, "alice", `m${from + k}`));
    // Batches of 8, 1 and 103 messages: seqs 1-8, 9 and 10-112, the last written in two parts
    // (100 at most at once): 10-109, then 110-112.
    await a.store.appendBatch(batch(1, 8));
    await a.store.appendBatch(batch(9, 9));
    await a.store.appendBatch(batch(10, 112));
    // The last part's writes cut short: m111's message row landed, its idempotency row did not.
    await session.client.execute("DELETE FROM message_idempotency WHERE conversation_id = ? AND sender_id = ? AND client_msg_id = ?", [c, "alice", "m111"], { prepare: true });
    await a.leases.close();
    await until(() => b.store.writer(c).kind === "self", 2 * timing.renewEveryMs + 1000);
    const retried = await b.store.appendBatch(batch(111, 111), { checked: true });
    assert.deepEqual(retried.map((r) => [Number(r.message.seq), r.created]), [[111, false]], "the retry is the stored message");
    assert.equal(idempotencyWrites, 3, "the rows of seqs 110-112 only");
    assert.equal((await b.store.findStored(c, "alice", "m111"))?.clientMsgId, "m111");
    assert.equal((await b.store.findStored(c, "alice", "m50"))?.clientMsgId, "m50", "an earlier part's rows were stored whole");
    assert.equal(Number((await b.store.append(text(c, "bob", "m113"))).message.seq), 113);
    await b.leases.close();
  });

  it("spreads conversations over every shard", () => {
    const seen = new Set(Array.from({ length: 2000 }, (_, i) => shardOf(`conversation-${i}`)));
    assert.equal(seen.size, SHARDS);
  });
});

async function someConversation(ok: (id: string) => boolean): Promise<string> {
  for (let i = 0; i < 1000; i++) {
    const id = `c-${randomBytes(6).toString("hex")}`;
    if (ok(id)) return id;
  }
  return assert.fail("no conversation in a shard this replica holds");
}

async function until(ok: () => boolean, withinMs: number): Promise<void> {
  const start = performance.now();
  while (!ok()) {
    if (performance.now() - start > withinMs) assert.fail(`not within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
