// Cassandra driver. Rows live in partitions (conversation_id, bucket). A conversation's seqs are
// written by one replica, the holder of its shard's lease (leases.ts), with plain writes: its
// counter is read from the store the first time it writes the conversation under a tenure (and
// after a failed write) and trusted only under that tenure, and each write of a seq checks, when
// its batch is sent, that the tenure still holds: a replica that lost a shard sends no seq again.
// Idempotency: a row per (conversation, sender, client_msg_id) names the seq and message id of
// each message, verified against the message on a retry. Both rows of a batch are written at once
// (one round trip, not two); a crash or a failure can leave either without the other. An
// idempotency row without its message is stale and ignored; a message without its idempotency row
// can only be in the part of the conversation's last batch written last (its next batch starts once
// the last one is stored whole, and a batch is written REPAIR_TAIL messages at a time, each part
// once the one before it is stored), and each message row names the first seq of its part
// (`batch_first_seq`), so whoever reads the counter again (a new tenure, or after a failed write)
// first writes the idempotency rows of that part's messages again (of the last REPAIR_TAIL
// messages for rows from before that column) and answers a retry of one of them with it: neither
// lost nor stored twice.
// A client's first attempt (it says so) received lately is not looked up when this replica knows
// every message it could have been stored as (see `trusts`): one read per message less.
// Writes go out in unlogged batches (see `write`): Cassandra's cost here is mostly per request,
// not per row. A failed write of a batch's rows is made again while the tenure holds (the rows are
// the same each time), so a server's passing failure leaves neither a gap nor a partly stored
// batch; one that still fails is left to settle (Cassandra's write timeout) before the
// conversation's counter is read again, so a write applied late is counted.
import type { Client, types } from "cassandra-driver";
import type { Message } from "../../../../gen/chat/api/v1/model_pb.js";
import { Code, retryLater } from "../../../../packages/runtime/src/errors.js";
import { KeyedBatchQueue } from "../../../../packages/runtime/src/serial.js";
import { BUCKET_SIZE, bucketOf } from "../domain/sequencing.js";
import { encodeContent, toMessage, withSeq, type MessageRow } from "./codec.js";
import { Long, num } from "./cql.js";
import type { SeqLeases } from "./leases.js";
import { NO_WATERMARKS, raise, sameWatermarks, type Watermarks } from "../domain/receipts.js";
import type { AppendOptions, AppendResult, MessageStore, NewMessage, Writer } from "./port.js";

const COLUMNS = "conversation_id, seq, message_id, client_msg_id, sender_id, sender_device_id, server_time, content";
const Q = {
  insert: `INSERT INTO messages (conversation_id, bucket, seq, message_id, client_msg_id, sender_id, sender_device_id, server_time, content, batch_first_seq)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  one: `SELECT ${COLUMNS} FROM messages WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
  range: `SELECT ${COLUMNS} FROM messages WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,
  last: "SELECT seq, batch_first_seq FROM messages WHERE conversation_id = ? AND bucket = ? ORDER BY seq DESC LIMIT 1",
  headGet: "SELECT last_seq FROM message_heads WHERE conversation_id = ?",
  headSet: "UPDATE message_heads SET last_seq = ? WHERE conversation_id = ?",
  idemGet: "SELECT seq, message_id FROM message_idempotency WHERE conversation_id = ? AND sender_id = ? AND client_msg_id = ?",
  inboxSet: "UPDATE inbox USING TIMESTAMP ? SET last_seq = ? WHERE user_id = ? AND conversation_id = ?",
  inboxGet: "SELECT conversation_id, last_seq FROM inbox WHERE user_id = ?",
  receiptGet: "SELECT delivered_seq, read_seq FROM receipts WHERE conversation_id = ? AND user_id = ?",
  receiptAll: "SELECT user_id, delivered_seq, read_seq FROM receipts WHERE conversation_id = ?",
  // Each watermark cell is written with its own value as the write timestamp, so Cassandra's
  // last-write-wins keeps the highest value whatever order concurrent writes land in.
  deliveredSet: "UPDATE receipts USING TIMESTAMP ? SET delivered_seq = ? WHERE conversation_id = ? AND user_id = ?",
  readSet: "UPDATE receipts USING TIMESTAMP ? SET read_seq = ? WHERE conversation_id = ? AND user_id = ?",
  bothSet: "UPDATE receipts USING TIMESTAMP ? SET delivered_seq = ?, read_seq = ? WHERE conversation_id = ? AND user_id = ?",
  idemSet: "INSERT INTO message_idempotency (conversation_id, sender_id, client_msg_id, seq, message_id) VALUES (?, ?, ?, ?, ?)",
};
const OPTS = { prepare: true };
/**
 * Statements per unlogged batch at most. Mostly small rows (about 100 bytes each) from many
 * partitions; past Cassandra's default multi-partition warning threshold (10), which only logs.
 * One batch is in flight, so this bounds the writes per Cassandra round trip: at 32 statements
 * and 14 ms a batch (a slow stretch of Cassandra; 3-4 ms is usual at 1,000 msg/s here) a store
 * writes at most about 2,300 statements/s, 450 messages/s at five writes each, and falls further
 * behind for as long as more is offered. Under a backlog the batches grow to this (or to
 * MAX_WRITE_BATCH_BYTES); otherwise they hold what one round trip lets gather, about 20.
 */
const MAX_WRITE_BATCH = 128;
/**
 * Bytes of values per batch at most: a batch Cassandra measures past `batch_size_fail_threshold`
 * (50 KiB by default) is refused whole, and a message may be 100,000 characters (up to 400 KB).
 * A statement heavier than this is sent on its own, where no batch limit applies.
 */
const MAX_WRITE_BATCH_BYTES = 32 * 1024;
/** Bytes of a statement's values, as the batch budget counts them (a string by its length: ids are ASCII). */
const valueBytes = (params: unknown[]): number => params.reduce<number>((n, p) => n + (p instanceof Uint8Array ? p.length : typeof p === "string" ? p.length : 8), 0);

/** One statement of the shared write batches (see `writes`). */
interface Write {
  query: string;
  params: unknown[];
  /** Its values' size (valueBytes). */
  bytes: number;
  /** Throws when the write may no longer be sent (its seq's tenure ended). */
  check?: () => void;
}

/**
 * How long the driver remembers the messages it stored (seq and message id, by conversation,
 * sender and client_msg_id), and at most how many (about 150 bytes each): a first attempt received
 * within this window is answered from this memory instead of a read (see `trusts`).
 */
const RECENT_MS = 60_000;
const MAX_RECENT = 100_000;
/**
 * Messages written at once at most, per conversation: the most that can be stored without their
 * idempotency rows when a write is cut short (each row of such a part names its first seq, so only
 * that part is read again with the counter; the last REPAIR_TAIL for rows that name none).
 */
const REPAIR_TAIL = 100;
/** How far the clocks of edges and message-store replicas may be apart (NTP; the leases assume a second). */
const CLOCK_SKEW_MS = 2_000;

/**
 * Attempts at a batch's idempotency and message rows (backoff 100, 200, 400 ms between them): a
 * failure Cassandra answers is often passing (a write timeout under a burst, a restarting node).
 */
const WRITE_ATTEMPTS = 4;
/**
 * How long a conversation whose rows failed to be written waits before its last seq is read again:
 * Cassandra's write_request_timeout (2 s by default), after which a write not yet applied is
 * dropped, never applied late, plus a second. Meanwhile its appends and retries are refused with a
 * retry hint.
 */
const DEFAULT_SETTLE_MS = 3_000;
/** The shared write batches' default linger, ms: none (see `writes` and DEFAULT_LINGER_MS of the Kafka bus). */
export const DEFAULT_WRITE_LINGER_MS = 0;

/** A write timestamp that makes the highest value win: the value itself (plus one, so 0 still beats "never written"). */
const maxWins = (value: number) => Long.fromNumber(value + 1);

const rowToMessage = (row: types.Row): Message =>
  toMessage({ ...(row as unknown as MessageRow), seq: num(row["seq"]) });

export interface CassandraStoreOptions {
  /** Which conversations this replica writes, and under which tenure. */
  leases: SeqLeases;
  logger?: { warn(obj: object, msg: string): void };
  /** Messages per partition. Fixed for a keyspace's life; tests use a small one to cross buckets. */
  bucketSize?: number;
  /** How long a conversation waits after a failed write before its counter is read again (DEFAULT_SETTLE_MS). */
  settleMs?: number;
  /** Linger of the shared write batches, ms (DEFAULT_WRITE_LINGER_MS; 0: none). */
  writeLingerMs?: number;
}

/** This replica may not write the conversation now: another holds its shard, or none does yet. */
const notWriter = (conversationId: string) =>
  retryLater(Code.Unavailable, `this message-store replica does not write the seqs of ${conversationId} now (its shard's lease is another replica's or being taken): retry`, 500);

/** Resolves once every promise has settled; rejects with the first rejection, if any (none is left running). */
async function allSettled(writes: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(writes)).find((r) => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
}

export function createCassandraMessageStore(client: Client, opts: CassandraStoreOptions): MessageStore {
  const { leases } = opts;
  const size = opts.bucketSize ?? BUCKET_SIZE;
  const settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
  /** Conversations whose last write failed, until when their counter may not be read (see DEFAULT_SETTLE_MS). */
  const settling = new Map<string, number>();
  /** Refuses work on a conversation whose failed write may still be applied. */
  function settled(conversationId: string): void {
    const until = settling.get(conversationId);
    if (until === undefined) return;
    const left = until - Date.now();
    if (left <= 0) settling.delete(conversationId);
    else throw retryLater(Code.Unavailable, `a write of ${conversationId} failed; the store reads its state again in ${left} ms: retry`, left);
  }
  const bucket = (seq: number) => bucketOf(seq, size);
  /**
   * Each conversation's last seq as this replica knows it, the tenure it was read under, and when
   * (Date.now()) it was read: every message of the conversation stored since then was stored here.
   */
  const lastSeqs = new Map<string, { seq: number; tenure: number; since: number }>();
  /** What this replica stored lately, oldest first, by `recentKey` (see RECENT_MS). */
  const recent = new Map<string, { seq: number; messageId: string; at: number }>();
  /** Since when `recent` names every message this replica stored (later once MAX_RECENT evicted one still in the window). */
  let recentComplete = Date.now();
  const recentKey = (conversationId: string, senderId: string, clientMsgId: string) => `${conversationId}\n${senderId}\n${clientMsgId}`;
  /** A message's key within its conversation: one message per sender and client_msg_id. */
  const senderKey = (m: { senderId: string; clientMsgId: string }) => `${m.senderId}\n${m.clientMsgId}`;

  function remember(key: string, seq: number, messageId: string): void {
    const now = Date.now();
    recent.delete(key);
    recent.set(key, { seq, messageId, at: now });
    for (const [k, v] of recent) {
      const current = v.at >= now - RECENT_MS;
      if (current && recent.size <= MAX_RECENT) break;
      if (current) recentComplete = Math.max(recentComplete, v.at);
      recent.delete(k);
    }
  }

  /**
   * Whether a first attempt an edge received at `firstAttemptAtMs` can not have been stored yet
   * unless `recent` names it. Any earlier copy was stored after that moment (the client resends
   * only after a first send), so by this replica if it has written the conversation under one
   * tenure since before then (no other replica writes it meanwhile), and still in the window: so
   * `recent` would name it.
   */
  function trusts(conversationId: string, firstAttemptAtMs: number): boolean {
    const known = lastSeqs.get(conversationId);
    const tenure = leases.tenure(conversationId);
    if (known === undefined || tenure === undefined || known.tenure !== tenure) return false;
    const received = firstAttemptAtMs - CLOCK_SKEW_MS;
    return received >= Math.max(known.since, recentComplete) && Date.now() - received <= RECENT_MS;
  }

  /**
   * The writes (idempotency rows, messages, inboxes, receipts, heads): one unlogged batch in
   * flight, the writes issued meanwhile, whatever their conversation, together in the next; when
   * none is in flight, those issued within the linger (`writeLingerMs`; without one, in the same
   * turn of the event loop) go together, and batches start at least the linger apart. Each needs
   * no atomicity with the others (receipts and inboxes are max-wins; an idempotency row is awaited
   * before its message's insert), so a batch is one request where there were many. A write of a
   * seq carries its tenure's check, made when its batch is sent (a write can wait here behind a
   * slow batch): one whose lease no longer holds is refused, not sent.
   */
  const writes = new KeyedBatchQueue<Write, true>(
    async (_, items) => {
      const refused = items.map((w) => {
        try {
          w.check?.();
          return undefined;
        } catch (err) {
          return err instanceof Error ? err : new Error(String(err));
        }
      });
      const batch = items.filter((_, i) => refused[i] === undefined).map(({ query, params }) => ({ query, params }));
      const [only] = batch;
      if (batch.length === 1 && only !== undefined) await client.execute(only.query, only.params, OPTS);
      else if (batch.length > 1) await client.batch(batch, { prepare: true, logged: false });
      return refused.map((err) => err ?? (true as const));
    },
    { maxBatch: MAX_WRITE_BATCH, gather: true, budget: { weight: (w) => w.bytes, max: MAX_WRITE_BATCH_BYTES }, lingerMs: opts.writeLingerMs ?? DEFAULT_WRITE_LINGER_MS },
  );
  const write = (query: string, params: unknown[], check?: () => void): Promise<true> => {
    const bytes = valueBytes(params);
    return writes.run("", check === undefined ? { query, params, bytes } : { query, params, bytes, check });
  };

  /**
   * The conversation's highest stored seq, and the first seq of the part of a batch its message was
   * written in (`last - REPAIR_TAIL + 1` at most far back, and that for a row that names none).
   */
  async function probeLast(conversationId: string): Promise<{ last: number; partFirst: number }> {
    const head = await client.execute(Q.headGet, [conversationId], OPTS);
    let last = num(head.first()?.["last_seq"]);
    let named: unknown = null;
    // Seqs are gap-free: walk forward from the hint's bucket to the highest stored seq.
    for (let b = bucket(Math.max(last, 1)); ; b++) {
      const r = await client.execute(Q.last, [conversationId, b], OPTS);
      const row = r.first();
      if (row === null) break;
      const seq = num(row["seq"]);
      if (seq >= last) {
        last = seq;
        named = row["batch_first_seq"];
      }
      if (last < (b + 1) * size) break;
    }
    const farthest = Math.max(1, last - REPAIR_TAIL + 1);
    return { last, partFirst: named === null || named === undefined ? farthest : Math.min(last, Math.max(farthest, num(named))) };
  }
  const probeLastSeq = async (conversationId: string): Promise<number> => (await probeLast(conversationId)).last;

  async function range(conversationId: string, lo: number, hi: number): Promise<Message[]> {
    const out: Message[] = [];
    for (let b = bucket(lo); b <= bucket(hi); b++) {
      const r = await client.execute(Q.range, [conversationId, b, Long.fromNumber(lo), Long.fromNumber(hi)], OPTS);
      for (const row of r.rows) out.push(rowToMessage(row));
    }
    return out;
  }

  /**
   * The conversation's messages from `from` to `last` (the last part written, see probeLast), their
   * idempotency rows written again (the ones a cut-short write left out), by sender and client_msg_id.
   */
  async function repairTail(conversationId: string, from: number, last: number, stillHeld: () => void): Promise<Map<string, Message>> {
    const tail = last === 0 ? [] : await range(conversationId, from, last);
    await allSettled(tail.map((m) => write(Q.idemSet, [conversationId, m.senderId, m.clientMsgId, Long.fromNumber(Number(m.seq)), m.messageId], stillHeld)));
    return new Map(tail.map((m) => [senderKey(m), m]));
  }

  /** The message at seq, if it is the one with this id (a claim whose message write never happened, crash in between, is stale). */
  async function messageAt(conversationId: string, seq: number, messageId: unknown): Promise<Message | undefined> {
    const row = (await client.execute(Q.one, [conversationId, bucket(seq), Long.fromNumber(seq)], OPTS)).first();
    return row === null || row["message_id"] !== messageId ? undefined : rowToMessage(row);
  }

  async function findStored(conversationId: string, senderId: string, clientMsgId: string, firstAttemptAtMs?: number): Promise<Message | undefined> {
    // A failed write of this very message may still land: not before it is settled.
    settled(conversationId);
    const remembered = recent.get(recentKey(conversationId, senderId, clientMsgId));
    if (remembered !== undefined) {
      const message = await messageAt(conversationId, remembered.seq, remembered.messageId);
      if (message !== undefined) return message;
    } else if (firstAttemptAtMs !== undefined && trusts(conversationId, firstAttemptAtMs)) return undefined;
    const idem = (await client.execute(Q.idemGet, [conversationId, senderId, clientMsgId], OPTS)).first();
    // Not stored, or stale: append anew.
    return idem === null ? undefined : messageAt(conversationId, num(idem["seq"]), idem["message_id"]);
  }

  /**
   * Stores messages of one conversation under this replica's tenure of it: idempotency rows and
   * messages together (in the shared unlogged batches), REPAIR_TAIL at a time, each checked, when
   * its batch is sent, against the tenure it was numbered under. A failed write is made again
   * (WRITE_ATTEMPTS) while the tenure holds; past that the counter is forgotten and read again
   * once the writes settled. Reading the counter repairs the tail (`repairTail`).
   */
  async function appendBatch(ms: NewMessage[], appendOpts: AppendOptions = {}): Promise<AppendResult[]> {
    const results: (AppendResult | undefined)[] =
      appendOpts.checked === true
        ? ms.map(() => undefined)
        : await Promise.all(
            ms.map(async (m) => {
              const previous = await findStored(m.conversationId, m.senderId, m.clientMsgId);
              return previous === undefined ? undefined : { message: previous, created: false };
            }),
          );
    // A repeat inside the batch is answered with the first one's result.
    const firstOf = new Map<string, number>();
    const repeats = new Map<number, number>();
    const fresh: number[] = [];
    ms.forEach((m, i) => {
      if (results[i] !== undefined) return;
      const key = senderKey(m);
      const first = firstOf.get(key);
      if (first === undefined) {
        firstOf.set(key, i);
        fresh.push(i);
      } else repeats.set(i, first);
    });
    const conversationId = ms[0]?.conversationId ?? "";
    const tenure = fresh.length > 0 ? leases.tenure(conversationId) : undefined;
    const stillHeld = () => {
      if (leases.tenure(conversationId) !== tenure) throw notWriter(conversationId);
    };
    let known = lastSeqs.get(conversationId);
    if (fresh.length > 0 && (tenure === undefined || known?.tenure !== tenure)) {
      if (tenure === undefined) throw notWriter(conversationId);
      settled(conversationId);
      const since = Date.now();
      const { last, partFirst } = await probeLast(conversationId);
      // A message of this batch may be in the last part stored without its idempotency row (a
      // write cut short): it is that message, not a new one.
      const tail = await repairTail(conversationId, partFirst, last, stillHeld);
      for (let k = fresh.length - 1; k >= 0; k--) {
        const i = fresh[k] ?? 0;
        const m = ms[i];
        const found = m === undefined ? undefined : tail.get(senderKey(m));
        if (found === undefined) continue;
        results[i] = { message: found, created: false };
        fresh.splice(k, 1);
      }
      known = { seq: last, tenure, since };
      lastSeqs.set(conversationId, known);
    }
    if (fresh.length > 0 && known !== undefined) {
      const { seq: base } = known;
      // Written REPAIR_TAIL at a time (below): each message row names the first seq of its part.
      const claims = fresh.map((i, k) => ({ i, m: ms[i], seq: base + 1 + k, partFirst: base + 1 + k - (k % REPAIR_TAIL) }));
      const rows = claims.map((c) => ({
        idem: [conversationId, c.m.senderId, c.m.clientMsgId, Long.fromNumber(c.seq), c.m.messageId],
        message: [conversationId, bucket(c.seq), Long.fromNumber(c.seq), c.m.messageId, c.m.clientMsgId, c.m.senderId, c.m.senderDeviceId, c.m.serverTime, Buffer.from(encodeContent(c.m.content)), Long.fromNumber(c.partFirst)],
      }));
      for (let attempt = 1; ; attempt++) {
        try {
          // REPAIR_TAIL messages at a time, each part settled before the next (the rows may span
          // several batches): none is still on its way when the counter is read again.
          for (let from = 0; from < rows.length; from += REPAIR_TAIL) {
            await allSettled(rows.slice(from, from + REPAIR_TAIL).flatMap((r) => [write(Q.idemSet, r.idem, stillHeld), write(Q.insert, r.message, stillHeld)]));
          }
          break;
        } catch (err) {
          if (leases.tenure(conversationId) === tenure && attempt < WRITE_ATTEMPTS) {
            opts.logger?.warn({ err, conversationId, attempt }, "writing messages failed; writing them again");
            await new Promise((r) => setTimeout(r, 100 * 2 ** (attempt - 1)));
            continue;
          }
          lastSeqs.delete(conversationId);
          const now = Date.now();
          // Those settled long ago and never written since are forgotten here (a long outage fails many).
          if (settling.size >= 10_000) for (const [id, until] of settling) if (until <= now) settling.delete(id);
          settling.set(conversationId, now + settleMs);
          throw err;
        }
      }
      for (const c of claims) {
        results[c.i] = { message: withSeq(c.m, c.seq), created: true };
        remember(recentKey(conversationId, c.m.senderId, c.m.clientMsgId), c.seq, c.m.messageId);
      }
      lastSeqs.set(conversationId, { ...known, seq: base + claims.length });
      // The head is only a hint of the bucket to start reading the last seq from: written when a
      // new bucket starts (a lost update costs one more read, nothing else).
      for (const c of claims) {
        if (c.seq === 1 || bucket(c.seq) !== bucket(c.seq - 1)) {
          write(Q.headSet, [Long.fromNumber(c.seq), conversationId]).catch((err: unknown) => opts.logger?.warn({ err }, "message_heads update failed"));
        }
      }
    }
    for (const [i, first] of repeats) {
      const r = results[first];
      if (r !== undefined) results[i] = { message: r.message, created: false };
    }
    return results.map((r) => {
      if (r === undefined) throw new Error("a message of the batch got no seq");
      return r;
    });
  }

  return {
    async append(m) {
      const [result] = await appendBatch([m]);
      if (result === undefined) throw new Error("append returned nothing");
      return result;
    },
    appendBatch,
    findStored,
    writer(conversationId): Writer {
      return leases.writer(conversationId);
    },
    lastSeq: probeLastSeq,
    range,
    async raiseWatermarks(conversationId, userId, to) {
      const row = (await client.execute(Q.receiptGet, [conversationId, userId], OPTS)).first();
      const current: Watermarks = row === null ? NO_WATERMARKS : { deliveredSeq: num(row["delivered_seq"]), readSeq: num(row["read_seq"]) };
      const next = raise(current, to);
      if (sameWatermarks(current, next)) return { watermarks: current, changed: false };
      // Max-wins writes (see Q): a concurrent lower report can never overwrite a higher one.
      const raised: Promise<unknown>[] = [];
      if (next.deliveredSeq > current.deliveredSeq) raised.push(write(Q.deliveredSet, [maxWins(next.deliveredSeq), Long.fromNumber(next.deliveredSeq), conversationId, userId]));
      if (next.readSeq > current.readSeq) raised.push(write(Q.readSet, [maxWins(next.readSeq), Long.fromNumber(next.readSeq), conversationId, userId]));
      await Promise.all(raised);
      return { watermarks: next, changed: true };
    },
    async watermarks(conversationId) {
      const rows = (await client.execute(Q.receiptAll, [conversationId], OPTS)).rows;
      return new Map(rows.map((r) => [String(r["user_id"]), { deliveredSeq: num(r["delivered_seq"]), readSeq: num(r["read_seq"]) }]));
    },
    async afterAppend(conversationId, seq, memberIds, senderId) {
      // Max-wins writes, so their order does not matter: all in parallel (batched by `write`).
      const s = Long.fromNumber(seq);
      const moved = memberIds.map((u) => write(Q.inboxSet, [maxWins(seq), s, u, conversationId]));
      if (senderId !== "") moved.push(write(Q.bothSet, [maxWins(seq), s, s, conversationId, senderId]));
      await Promise.all(moved);
    },
    async inbox(userId) {
      const out = new Map<string, number>();
      let pageState: string | undefined;
      do {
        const r = await client.execute(Q.inboxGet, [userId], { ...OPTS, fetchSize: 5000, ...(pageState === undefined ? {} : { pageState }) });
        for (const row of r.rows) out.set(String(row["conversation_id"]), num(row["last_seq"]));
        pageState = r.pageState ?? undefined;
      } while (pageState !== undefined);
      return out;
    },
    async health() {
      await client.execute("SELECT release_version FROM system.local");
    },
    async close() {
      await leases.close();
      await client.shutdown();
    },
  };
}
