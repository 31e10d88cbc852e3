// Embedded driver: messages in SQL on PGlite, persisted under DATA_DIR. The seq comes from an
// upsert on ms_heads inside the same transaction as the insert, so it is gap-free and never reused.
import type { Sql } from "../../../../packages/runtime/src/sql/port.js";
import { encodeContent, toMessage, withSeq, type MessageRow } from "./codec.js";
import { NO_WATERMARKS, raise, sameWatermarks, type Watermarks } from "../domain/receipts.js";
import type { AppendResult, MessageStore } from "./port.js";

const COLUMNS = "conversation_id, seq, message_id, client_msg_id, sender_id, sender_device_id, server_time, content";
const FIND_STORED = `SELECT ${COLUMNS} FROM ms_messages WHERE conversation_id = $1 AND sender_id = $2 AND client_msg_id = $3`;

export function createEmbeddedMessageStore(sql: Sql): MessageStore {
  return {
    async appendBatch(ms) {
      // Each append checks for its retry inside its own transaction: `checked` saves nothing here.
      const out: AppendResult[] = [];
      for (const m of ms) out.push(await this.append(m));
      return out;
    },
    async findStored(conversationId, senderId, clientMsgId) {
      const r = await sql.query<MessageRow>(FIND_STORED, [conversationId, senderId, clientMsgId]);
      const row = r.rows[0];
      return row === undefined ? undefined : toMessage(row);
    },
    async append(m) {
      return sql.transaction(async (tx) => {
        const existing = await tx.query<MessageRow>(FIND_STORED, [m.conversationId, m.senderId, m.clientMsgId]);
        const row = existing.rows[0];
        if (row !== undefined) return { message: toMessage(row), created: false };
        const head = await tx.query<{ last_seq: number }>(
          `INSERT INTO ms_heads (conversation_id, last_seq) VALUES ($1, 1)
           ON CONFLICT (conversation_id) DO UPDATE SET last_seq = ms_heads.last_seq + 1
           RETURNING last_seq`,
          [m.conversationId],
        );
        const seq = Number(head.rows[0]?.last_seq);
        await tx.query(`INSERT INTO ms_messages (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
          m.conversationId,
          seq,
          m.messageId,
          m.clientMsgId,
          m.senderId,
          m.senderDeviceId,
          m.serverTime,
          encodeContent(m.content),
        ]);
        return { message: withSeq(m, seq), created: true };
      });
    },
    writer() {
      return { kind: "self" };
    },
    async lastSeq(conversationId) {
      const r = await sql.query<{ last_seq: number }>("SELECT last_seq FROM ms_heads WHERE conversation_id = $1", [conversationId]);
      return Number(r.rows[0]?.last_seq ?? 0);
    },
    async range(conversationId, lo, hi) {
      const r = await sql.query<MessageRow>(
        `SELECT ${COLUMNS} FROM ms_messages WHERE conversation_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq`,
        [conversationId, lo, hi],
      );
      return r.rows.map(toMessage);
    },
    async raiseWatermarks(conversationId, userId, to) {
      return sql.transaction(async (tx) => {
        const r = await tx.query<{ delivered_seq: number; read_seq: number }>(
          "SELECT delivered_seq, read_seq FROM ms_receipts WHERE conversation_id = $1 AND user_id = $2 FOR UPDATE",
          [conversationId, userId],
        );
        const row = r.rows[0];
        const current: Watermarks = row === undefined ? NO_WATERMARKS : { deliveredSeq: row.delivered_seq, readSeq: row.read_seq };
        const next = raise(current, to);
        if (sameWatermarks(current, next)) return { watermarks: current, changed: false };
        await tx.query(
          `INSERT INTO ms_receipts (conversation_id, user_id, delivered_seq, read_seq) VALUES ($1, $2, $3, $4)
           ON CONFLICT (conversation_id, user_id) DO UPDATE
           SET delivered_seq = GREATEST(ms_receipts.delivered_seq, excluded.delivered_seq), read_seq = GREATEST(ms_receipts.read_seq, excluded.read_seq)`,
          [conversationId, userId, next.deliveredSeq, next.readSeq],
        );
        return { watermarks: next, changed: true };
      });
    },
    async afterAppend(conversationId, seq, memberIds, senderId) {
      if (memberIds.length > 0) {
        await sql.query(
          `INSERT INTO ms_inbox (user_id, conversation_id, last_seq) SELECT u, $2, $3 FROM unnest($1::text[]) AS u
           ON CONFLICT (user_id, conversation_id) DO UPDATE SET last_seq = GREATEST(ms_inbox.last_seq, excluded.last_seq)`,
          [memberIds, conversationId, seq],
        );
      }
      if (senderId === "") return;
      await sql.query(
        `INSERT INTO ms_receipts (conversation_id, user_id, delivered_seq, read_seq) VALUES ($1, $2, $3, $3)
         ON CONFLICT (conversation_id, user_id) DO UPDATE
         SET delivered_seq = GREATEST(ms_receipts.delivered_seq, $3), read_seq = GREATEST(ms_receipts.read_seq, $3)`,
        [conversationId, senderId, seq],
      );
    },
    async watermarks(conversationId) {
      const r = await sql.query<{ user_id: string; delivered_seq: number; read_seq: number }>(
        "SELECT user_id, delivered_seq, read_seq FROM ms_receipts WHERE conversation_id = $1",
        [conversationId],
      );
      return new Map(r.rows.map((row) => [row.user_id, { deliveredSeq: row.delivered_seq, readSeq: row.read_seq }]));
    },
    async inbox(userId) {
      const r = await sql.query<{ conversation_id: string; last_seq: number }>("SELECT conversation_id, last_seq FROM ms_inbox WHERE user_id = $1", [userId]);
      return new Map(r.rows.map((row) => [row.conversation_id, row.last_seq]));
    },
    health: () => sql.health(),
    close: () => sql.close(),
  };
}
