// Seq leases (Cassandra driver): the single writer of each shard of conversations. A conversation's
// seqs are written by the one replica holding its shard's lease, with plain writes: no lightweight
// transaction per message. The lease itself is taken and renewed with lightweight transactions
// (a few a second for the whole replica, whatever the message rate), in table seq_leases.
//
// Why a stale writer can never reuse a seq (invariant 1): a holder writes only while its own clock
// is before `expires_at - margin` (it renewed at send time t with expires_at = t + lease), and
// another replica takes a shard over only once its clock is past `expires_at + margin`. Between
// the holder's last write and the new holder's first read of the conversation's last seq there are
// then at least 2 x margin minus twice the clock skew: more than Cassandra's write timeout, after
// which a write not yet applied is dropped, never applied late. So the new holder's counter starts
// from every write the old one made. The assumptions: replicas' clocks within a second of each
// other (NTP), write_request_timeout under the margin (2 s by default; margin 4 s).
//
// A replica restarted under the same INSTANCE_NAME (a pod's name, the local cluster's fixed name)
// takes its previous incarnation's shards back at once: two live processes must never share a
// name. A replica that stops releases its shards, so another takes them at once.
import type { Client } from "cassandra-driver";
import { Long, num } from "./cql.js";
import type { Writer } from "./port.js";

/** Shards of conversations; each has one lease (one row of seq_leases). Fixed for a keyspace's life. */
export const SHARDS = 16;

export interface LeaseTiming {
  /** How long a taken or renewed lease lasts, from the moment the request was sent. */
  leaseMs: number;
  /** Covers clock skew between replicas plus Cassandra's write timeout (see the top of this file). */
  marginMs: number;
  /** How often held leases are renewed and free ones taken. */
  renewEveryMs: number;
}

export const DEFAULT_LEASE_MS = 10_000;

/** A lease of `leaseMs`: margin 40% of it, renewed every 20% (10 s: margin 4 s, renewed every 2 s). */
export const leaseTiming = (leaseMs = DEFAULT_LEASE_MS): LeaseTiming => ({ leaseMs, marginMs: Math.round(leaseMs * 0.4), renewEveryMs: Math.round(leaseMs * 0.2) });

export interface SeqLeases {
  writer(conversationId: string): Writer;
  /**
   * The tenure (lease epoch) under which this replica may write the conversation's seqs at this
   * moment, or undefined. Checked right before each write; a counter is trusted only under the
   * tenure it was read in.
   */
  tenure(conversationId: string): number | undefined;
  /**
   * Takes and renews leases until close; resolves after the first round. `address` is host:port
   * where the other replicas reach this one's MessageStoreService (forwarded appends).
   */
  start(address: string): Promise<void>;
  /** Stops writing, then gives the held shards up so that another replica takes them at once. */
  close(): Promise<void>;
}

export interface SeqLeaseOptions {
  /** This replica's stable name (see the top of this file). */
  instance: string;
  timing?: LeaseTiming;
  logger?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

/** FNV-1a over the conversation id's UTF-16 code units: stable across processes and releases. */
export function shardOf(conversationId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < conversationId.length; i++) {
    h ^= conversationId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % SHARDS;
}

const Q = {
  all: "SELECT shard, owner, address, epoch, expires_at FROM seq_leases",
  create: "INSERT INTO seq_leases (shard, owner, address, epoch, expires_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS",
  take: "UPDATE seq_leases SET owner = ?, address = ?, epoch = ?, expires_at = ? WHERE shard = ? IF epoch = ? AND expires_at = ?",
  renew: "UPDATE seq_leases SET expires_at = ? WHERE shard = ? IF epoch = ?",
};
const OPTS = { prepare: true };

interface Held {
  epoch: number;
  /** performance.now() past which this replica writes no more under the lease. */
  validUntil: number;
}

export function createSeqLeases(client: Client, opts: SeqLeaseOptions): SeqLeases {
  const timing = opts.timing ?? leaseTiming();
  /** Wall clock (ms), compared across replicas through expires_at. */
  const now = Date.now;
  const held = new Map<number, Held>();
  /** Shards held by other replicas, with their address. */
  const peers = new Map<number, string>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let round: Promise<void> = Promise.resolve();
  /** Where the other replicas reach this one (set by start). */
  let ownAddress = "";

  const validTenure = (shard: number): number | undefined => {
    const h = held.get(shard);
    return h !== undefined && performance.now() < h.validUntil ? h.epoch : undefined;
  };

  /** Sends one conditional write for the shard; on success holds it as `epoch` from the send time. */
  async function claim(shard: number, epoch: number, query: string, params: unknown[]): Promise<boolean> {
    const sentAt = performance.now();
    const applied = (await client.execute(query, params, OPTS)).wasApplied();
    if (applied && !closed) {
      held.set(shard, { epoch, validUntil: sentAt + timing.leaseMs - timing.marginMs });
      peers.delete(shard);
    }
    return applied;
  }

  async function visit(shard: number, row: { owner: string; address: string; epoch: number; expiresAt: number } | undefined): Promise<void> {
    const mine = held.get(shard);
    const expiresAt = Long.fromNumber(now() + timing.leaseMs);
    if (mine !== undefined && row?.epoch === mine.epoch) {
      if (!(await claim(shard, mine.epoch, Q.renew, [expiresAt, shard, Long.fromNumber(mine.epoch)]))) lose(shard);
      return;
    }
    if (mine !== undefined) lose(shard);
    if (row === undefined) {
      await claim(shard, 1, Q.create, [shard, opts.instance, ownAddress, Long.ONE, expiresAt]);
      return;
    }
    // Free once past its expiry plus the margin; at once when it was this instance's previous life.
    // Taken only if the row is still as read: a renewal meanwhile (same epoch) keeps it its holder's.
    if (now() > row.expiresAt + timing.marginMs || row.owner === opts.instance) {
      const epoch = row.epoch + 1;
      if (await claim(shard, epoch, Q.take, [opts.instance, ownAddress, Long.fromNumber(epoch), expiresAt, shard, Long.fromNumber(row.epoch), Long.fromNumber(row.expiresAt)])) {
        opts.logger?.info?.({ shard, epoch, from: row.owner }, "took the seq lease of a shard");
        return;
      }
    }
    peers.set(shard, row.address);
  }

  function lose(shard: number): void {
    held.delete(shard);
    opts.logger?.warn({ shard }, "lost the seq lease of a shard: its conversations are another replica's now");
  }

  async function runRound(): Promise<void> {
    const rows = new Map<number, { owner: string; address: string; epoch: number; expiresAt: number }>();
    for (const r of (await client.execute(Q.all, [], OPTS)).rows) {
      rows.set(Number(r["shard"]), { owner: String(r["owner"]), address: String(r["address"]), epoch: num(r["epoch"]), expiresAt: num(r["expires_at"]) });
    }
    await Promise.all(
      Array.from({ length: SHARDS }, async (_, shard) => {
        try {
          await visit(shard, rows.get(shard));
        } catch (err) {
          // A held lease simply runs out if its renewals keep failing.
          opts.logger?.warn({ err, shard }, "seq lease round failed for a shard");
        }
      }),
    );
  }

  function schedule(): void {
    if (closed) return;
    timer = setTimeout(() => {
      round = runRound()
        .catch((err: unknown) => opts.logger?.warn({ err }, "seq lease round failed"))
        .finally(schedule);
    }, timing.renewEveryMs);
    timer.unref();
  }

  return {
    writer(conversationId) {
      const shard = shardOf(conversationId);
      if (validTenure(shard) !== undefined) return { kind: "self" };
      const address = peers.get(shard);
      return address === undefined || address === ownAddress ? { kind: "none" } : { kind: "peer", address };
    },
    tenure(conversationId) {
      return validTenure(shardOf(conversationId));
    },
    async start(advertised) {
      ownAddress = advertised;
      round = runRound();
      await round;
      schedule();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await round.catch(() => undefined);
      const mine = [...held];
      held.clear();
      // Expired at once: the next holder needs no wait (this replica writes nothing more).
      await Promise.all(mine.map(([shard, h]) => client.execute(Q.renew, [Long.fromNumber(-timing.marginMs - 1), shard, Long.fromNumber(h.epoch)], OPTS).catch(() => undefined)));
    },
  };
}
