// The group store in SQL, over the shared Sql port: the same code on PGlite and PostgreSQL.
import { create } from "@bufbuild/protobuf";
import { ConversationType, Role } from "../../../../gen/chat/api/v1/enums_pb.js";
import { ConversationInfoSchema, MembershipSchema, type ConversationInfo, type Membership } from "../../../../gen/chat/group/v1/group_pb.js";
import type { Sql } from "../../../../packages/runtime/src/sql/port.js";
import { pairKey } from "../domain/rules.js";
import type { GroupStore } from "./port.js";

interface ConversationRow {
  conversation_id: string;
  type: number;
  title: string;
  member_count: number;
  member_limit: number;
  created_at: Date;
}

interface MembershipRow {
  conversation_id: string;
  user_id: string;
  role: number;
  member: boolean;
  visible_from_seq: number;
  removed_at_seq: number;
  joined_at: Date;
}

const CONVERSATION = "c.conversation_id, c.type, c.title, c.member_count, c.member_limit, c.created_at";
const MEMBERSHIP = "m.conversation_id, m.user_id, m.role, m.member, m.visible_from_seq, m.removed_at_seq, m.joined_at";

const toConversation = (r: ConversationRow): ConversationInfo =>
  create(ConversationInfoSchema, {
    conversationId: r.conversation_id,
    type: r.type,
    title: r.title,
    memberCount: r.member_count,
    memberLimit: r.member_limit,
    createdAtMs: BigInt(r.created_at.getTime()),
  });

const toMembership = (r: MembershipRow): Membership =>
  create(MembershipSchema, {
    conversationId: r.conversation_id,
    userId: r.user_id,
    role: r.role,
    member: r.member,
    visibleFromSeq: BigInt(r.visible_from_seq),
    removedAtSeq: BigInt(r.removed_at_seq),
  });

export function createSqlGroupStore(sql: Sql, opts: { directMemberLimit?: number } = {}): GroupStore {
  const conversationById = async (id: string) =>
    (await sql.query<ConversationRow>(`SELECT ${CONVERSATION} FROM group_conversations c WHERE c.conversation_id = $1 AND NOT c.deleted`, [id])).rows[0];

  return {
    async getOrCreateDirect(a, b, newId) {
      const key = pairKey(a, b);
      return sql.transaction(async (tx) => {
        // ON CONFLICT on the unique pair key: of two concurrent creators exactly one inserts.
        const inserted = await tx.query<ConversationRow>(
          `INSERT INTO group_conversations AS c (conversation_id, type, member_limit, member_count, direct_key)
           VALUES ($1, $2, $3, 2, $4) ON CONFLICT (direct_key) DO NOTHING RETURNING ${CONVERSATION}`,
          [newId, ConversationType.DIRECT, opts.directMemberLimit ?? 2, key],
        );
        const row = inserted.rows[0];
        if (row !== undefined) {
          await tx.query("INSERT INTO group_members (conversation_id, user_id, role) VALUES ($1, $2, $4), ($1, $3, $4)", [newId, a, b, Role.MEMBER]);
          return { conversation: toConversation(row), created: true };
        }
        const existing = await tx.query<ConversationRow>(`SELECT ${CONVERSATION} FROM group_conversations c WHERE c.direct_key = $1`, [key]);
        const found = existing.rows[0];
        if (found === undefined) throw new Error(`direct conversation for ${a} and ${b} vanished`);
        return { conversation: toConversation(found), created: false };
      });
    },
    async getConversation(id) {
      const row = await conversationById(id);
      return row === undefined ? undefined : toConversation(row);
    },
    async getMembership(conversationId, userId) {
      const r = await sql.query<MembershipRow>(`SELECT ${MEMBERSHIP} FROM group_members m WHERE m.conversation_id = $1 AND m.user_id = $2`, [conversationId, userId]);
      const row = r.rows[0];
      return row === undefined ? undefined : toMembership(row);
    },
    async listMembers(conversationId, after, limit) {
      const r = await sql.query<MembershipRow>(
        `SELECT ${MEMBERSHIP} FROM group_members m WHERE m.conversation_id = $1 AND m.member AND m.user_id > $2 ORDER BY m.user_id LIMIT $3`,
        [conversationId, after, limit],
      );
      return r.rows.map((row) => ({ userId: row.user_id, role: row.role, joinedSeq: row.visible_from_seq, joinedAt: row.joined_at }));
    },
    async listUserMemberships(userId, after, limit) {
      const r = await sql.query<MembershipRow & ConversationRow>(
        `SELECT ${MEMBERSHIP}, ${CONVERSATION} FROM group_members m JOIN group_conversations c USING (conversation_id)
         WHERE m.user_id = $1 AND m.member AND NOT c.deleted AND m.conversation_id > $2 ORDER BY m.conversation_id LIMIT $3`,
        [userId, after, limit],
      );
      return r.rows.map((row) => ({ membership: toMembership(row), conversation: toConversation(row) }));
    },
    health: () => sql.health(),
    close: () => sql.close(),
  };
}
