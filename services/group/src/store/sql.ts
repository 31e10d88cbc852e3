// The group store in SQL, over the shared Sql port: the same code on PGlite and PostgreSQL.
import { create } from "@bufbuild/protobuf";
import { ConversationType, Role, SystemEventKind } from "../../../../gen/chat/api/v1/enums_pb.js";
import { ConversationInfoSchema, MembershipSchema, type ConversationInfo, type Membership } from "../../../../gen/chat/group/v1/group_pb.js";
import type { Sql, SqlExecutor } from "../../../../packages/runtime/src/sql/port.js";
import { effectsOf, type ChangeSpec, type GroupState } from "../domain/changes.js";
import { pairKey } from "../domain/rules.js";
import type { GroupStore, MemberRow, RecordedChange } from "./port.js";

interface ConversationRow {
  conversation_id: string;
  type: number;
  title: string;
  member_count: number;
  member_limit: number;
  created_at: Date;
  membership_seq: number;
}

interface ChangeRow {
  change_id: string;
  conversation_id: string;
  kind: number;
  actor_id: string;
  user_ids: string[];
  title: string;
  role: number;
  applied_seq: number | null;
}

interface MembershipRow {
  conversation_id: string;
  user_id: string;
  role: number;
  member: boolean;
  visible_from_seq: number;
  removed_at_seq: number;
  joined_at: Date;
  joined_seq: number;
}

const CONVERSATION = "c.conversation_id, c.type, c.title, c.member_count, c.member_limit, c.created_at, c.membership_seq";
const CHANGE = "change_id, conversation_id, kind, actor_id, user_ids, title, role, applied_seq";
const MEMBERSHIP = "m.conversation_id, m.user_id, m.role, m.member, m.visible_from_seq, m.removed_at_seq, m.joined_at, m.joined_seq";

const toConversation = (r: ConversationRow): ConversationInfo =>
  create(ConversationInfoSchema, {
    conversationId: r.conversation_id,
    type: r.type,
    title: r.title,
    memberCount: r.member_count,
    memberLimit: r.member_limit,
    createdAtMs: BigInt(r.created_at.getTime()),
    membershipSeq: BigInt(r.membership_seq),
  });

const toMemberRow = (r: MembershipRow): MemberRow => ({ userId: r.user_id, role: r.role, joinedSeq: r.joined_seq, joinedAt: r.joined_at });

const toChange = (r: ChangeRow): RecordedChange => ({
  changeId: r.change_id,
  conversationId: r.conversation_id,
  spec: { kind: r.kind, actorId: r.actor_id, userIds: r.user_ids, title: r.title, role: r.role },
  appliedSeq: r.applied_seq ?? undefined,
});

/** The group's state for a change's rules, read inside the transaction that holds the conversation. */
async function stateOf(tx: SqlExecutor, c: { conversation_id: string; type: number; title: string; member_count: number; member_limit: number }, userIds: string[]): Promise<GroupState> {
  const r = await tx.query<{ user_id: string; role: number }>(
    "SELECT user_id, role FROM group_members WHERE conversation_id = $1 AND member AND user_id = ANY($2::text[])",
    [c.conversation_id, userIds],
  );
  return { type: c.type, title: c.title, memberCount: c.member_count, memberLimit: c.member_limit, roles: new Map(r.rows.map((row) => [row.user_id, row.role])) };
}

const insertChange = (tx: SqlExecutor, changeId: string, conversationId: string, spec: ChangeSpec) =>
  tx.query("INSERT INTO group_changes (change_id, conversation_id, kind, actor_id, user_ids, title, role) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)", [
    changeId,
    conversationId,
    spec.kind,
    spec.actorId,
    JSON.stringify(spec.userIds),
    spec.title,
    spec.role,
  ]);

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
      return r.rows.map(toMemberRow);
    },
    async membersOfMany(conversationIds, maxMembers) {
      const conversations = (
        await sql.query<ConversationRow>(`SELECT ${CONVERSATION} FROM group_conversations c WHERE c.conversation_id = ANY($1::text[]) AND NOT c.deleted`, [conversationIds])
      ).rows;
      const listed = conversations.filter((c) => c.member_count <= maxMembers).map((c) => c.conversation_id);
      const members = new Map<string, MemberRow[]>(listed.map((id) => [id, []]));
      if (listed.length > 0) {
        const r = await sql.query<MembershipRow>(`SELECT ${MEMBERSHIP} FROM group_members m WHERE m.conversation_id = ANY($1::text[]) AND m.member ORDER BY m.conversation_id, m.user_id`, [listed]);
        for (const row of r.rows) members.get(row.conversation_id)?.push(toMemberRow(row));
      }
      return conversations.map((c) => ({ conversation: toConversation(c), members: members.get(c.conversation_id) }));
    },
    async listUserMemberships(userId, after, limit, minMembers = 0) {
      const r = await sql.query<MembershipRow & ConversationRow>(
        `SELECT ${MEMBERSHIP}, ${CONVERSATION} FROM group_members m JOIN group_conversations c USING (conversation_id)
         WHERE m.user_id = $1 AND m.member AND NOT c.deleted AND m.conversation_id > $2 AND c.member_count >= $4 ORDER BY m.conversation_id LIMIT $3`,
        [userId, after, limit, minMembers],
      );
      return r.rows.map((row) => ({ membership: toMembership(row), conversation: toConversation(row) }));
    },
    async userMemberships(userId, conversationIds, minMembers) {
      if (conversationIds.length === 0 && minMembers === 0) return [];
      // Two indexed lookups (the primary key for the named ones, the by-user index for the large
      // ones), not one condition with OR, which would scan every membership. Lists are text[]
      // parameters (= ANY): the planner then looks them up by index, where a jsonb set-returning
      // function's guess of 100 rows made it scan every conversation.
      const r = await sql.query<MembershipRow & ConversationRow>(
        `SELECT ${MEMBERSHIP}, ${CONVERSATION} FROM group_members m JOIN group_conversations c USING (conversation_id)
         WHERE m.user_id = $1 AND NOT c.deleted AND m.conversation_id = ANY($2::text[])
         UNION
         SELECT ${MEMBERSHIP}, ${CONVERSATION} FROM group_members m JOIN group_conversations c USING (conversation_id)
         WHERE m.user_id = $1 AND m.member AND NOT c.deleted AND $3 > 0 AND c.member_count >= $3`,
        [userId, conversationIds, minMembers],
      );
      return r.rows.map((row) => ({ membership: toMembership(row), conversation: toConversation(row) }));
    },
    async filterContacts(userId, others) {
      if (others.length === 0) return [];
      const r = await sql.query<{ user_id: string }>(
        `SELECT DISTINCT o.user_id FROM group_members me JOIN group_members o ON o.conversation_id = me.conversation_id AND o.member
         WHERE me.user_id = $1 AND me.member AND o.user_id = ANY($2::text[])`,
        [userId, others],
      );
      return r.rows.map((row) => row.user_id);
    },
    async createGroup(g) {
      return sql.transaction(async (tx) => {
        const createKey = g.createKey === "" ? null : g.createKey;
        // The partial unique index on (creator_id, create_key): of two concurrent retries one inserts.
        const inserted = await tx.query<ConversationRow>(
          `INSERT INTO group_conversations AS c (conversation_id, type, title, member_limit, member_count, creator_id, create_key, pending_change)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (creator_id, create_key) WHERE create_key IS NOT NULL DO NOTHING RETURNING ${CONVERSATION}`,
          [g.conversationId, ConversationType.GROUP, g.title, g.memberLimit, g.memberIds.length + 1, g.creatorId, createKey, g.changeId],
        );
        const row = inserted.rows[0];
        if (row === undefined) {
          const existing = await tx.query<ConversationRow & { pending_change: string | null }>(
            `SELECT ${CONVERSATION}, c.pending_change FROM group_conversations c WHERE c.creator_id = $1 AND c.create_key = $2`,
            [g.creatorId, createKey],
          );
          const found = existing.rows[0];
          if (found === undefined) throw new Error(`group of ${g.creatorId} with key ${g.createKey} vanished`);
          return { conversation: toConversation(found), created: false, pendingChangeId: found.pending_change ?? undefined };
        }
        await tx.query(
          `INSERT INTO group_members (conversation_id, user_id, role)
           SELECT $1::text, $2::text, $3::smallint UNION ALL SELECT $1, value, $4::smallint FROM unnest($5::text[]) AS value`,
          [g.conversationId, g.creatorId, Role.OWNER, Role.MEMBER, g.memberIds],
        );
        await insertChange(tx, g.changeId, g.conversationId, { kind: SystemEventKind.CREATED, actorId: g.creatorId, userIds: g.memberIds, title: g.title, role: Role.UNSPECIFIED });
        return { conversation: toConversation(row), created: true, pendingChangeId: g.changeId };
      });
    },
    async beginChange(conversationId, changeId, users, check) {
      return sql.transaction(async (tx) => {
        const held = await tx.query<ConversationRow & { pending_change: string | null }>(
          `SELECT ${CONVERSATION}, c.pending_change FROM group_conversations c WHERE c.conversation_id = $1 AND NOT c.deleted FOR UPDATE`,
          [conversationId],
        );
        const c = held.rows[0];
        if (c === undefined) return { status: "missing" } as const;
        if (c.pending_change !== null) {
          const age = await tx.query<{ ms: number }>("SELECT (EXTRACT(EPOCH FROM now() - created_at) * 1000)::float8 AS ms FROM group_changes WHERE change_id = $1", [c.pending_change]);
          return { status: "busy", pendingChangeId: c.pending_change, pendingForMs: age.rows[0]?.ms ?? 0 } as const;
        }
        const change = check(await stateOf(tx, c, users));
        if (change === undefined) return { status: "unchanged" } as const;
        await insertChange(tx, changeId, conversationId, change);
        await tx.query("UPDATE group_conversations SET pending_change = $2 WHERE conversation_id = $1", [conversationId, changeId]);
        return { status: "begun", change } as const;
      });
    },
    async applyChange(changeId, seq) {
      await sql.transaction(async (tx) => {
        const r = await tx.query<ChangeRow>(`SELECT ${CHANGE} FROM group_changes WHERE change_id = $1 FOR UPDATE`, [changeId]);
        const row = r.rows[0];
        if (row === undefined) throw new Error(`unknown group change ${changeId}`);
        if (row.applied_seq !== null) return;
        const { spec, conversationId } = toChange(row);
        const effects = effectsOf(spec);
        if (effects.joined.length > 0) {
          // A member reads from their own join message on (visible_from_seq is exclusive).
          await tx.query(
            `INSERT INTO group_members AS m (conversation_id, user_id, role, member, visible_from_seq, removed_at_seq, joined_seq)
             SELECT $1::text, value, $2::smallint, true, $3::bigint, 0, $4::bigint FROM unnest($5::text[]) AS value
             ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = $2, member = true, visible_from_seq = $3, removed_at_seq = 0, joined_seq = $4, joined_at = now()`,
            [conversationId, Role.MEMBER, seq - 1, seq, effects.joined],
          );
        }
        if (effects.left.length > 0) {
          await tx.query("UPDATE group_members SET member = false, removed_at_seq = $2 WHERE conversation_id = $1 AND member AND user_id = ANY($3::text[])", [conversationId, seq, effects.left]);
        }
        for (const [userId, role] of effects.roles) {
          await tx.query("UPDATE group_members SET role = $3 WHERE conversation_id = $1 AND user_id = $2 AND member", [conversationId, userId, role]);
        }
        if (spec.kind === SystemEventKind.CREATED) await tx.query("UPDATE group_members SET joined_seq = $2 WHERE conversation_id = $1", [conversationId, seq]);
        await tx.query(
          `UPDATE group_conversations SET
             title = CASE WHEN $3::boolean THEN $4::text ELSE title END,
             member_count = (SELECT count(*) FROM group_members WHERE conversation_id = $1 AND member),
             membership_seq = GREATEST(membership_seq, $2::bigint),
             pending_change = CASE WHEN pending_change = $5::text THEN NULL ELSE pending_change END
           WHERE conversation_id = $1`,
          [conversationId, seq, spec.kind === SystemEventKind.RENAMED, spec.title, changeId],
        );
        await tx.query("UPDATE group_changes SET applied_seq = $2 WHERE change_id = $1", [changeId, seq]);
      });
    },
    async abandonChange(changeId) {
      await sql.transaction(async (tx) => {
        const r = await tx.query<{ conversation_id: string }>("DELETE FROM group_changes WHERE change_id = $1 AND applied_seq IS NULL RETURNING conversation_id", [changeId]);
        const row = r.rows[0];
        if (row !== undefined) await tx.query("UPDATE group_conversations SET pending_change = NULL WHERE conversation_id = $1 AND pending_change = $2", [row.conversation_id, changeId]);
      });
    },
    async getChange(changeId) {
      const r = await sql.query<ChangeRow>(`SELECT ${CHANGE} FROM group_changes WHERE change_id = $1`, [changeId]);
      const row = r.rows[0];
      return row === undefined ? undefined : toChange(row);
    },
    async pendingChanges(olderThanMs) {
      const r = await sql.query<ChangeRow>(
        `SELECT ${CHANGE} FROM group_changes WHERE applied_seq IS NULL AND created_at <= now() - make_interval(secs => $1::float8 / 1000) ORDER BY created_at LIMIT 100`,
        [olderThanMs],
      );
      return r.rows.map(toChange);
    },
    async deleteGroup(conversationId, actorId, check) {
      return sql.transaction(async (tx) => {
        const held = await tx.query<ConversationRow>(`SELECT ${CONVERSATION} FROM group_conversations c WHERE c.conversation_id = $1 AND NOT c.deleted FOR UPDATE`, [conversationId]);
        const c = held.rows[0];
        if (c === undefined) return undefined;
        check(await stateOf(tx, c, [actorId]));
        const members = await tx.query<{ user_id: string }>("SELECT user_id FROM group_members WHERE conversation_id = $1 AND member", [conversationId]);
        await tx.query("UPDATE group_conversations SET deleted = true, pending_change = NULL WHERE conversation_id = $1", [conversationId]);
        await tx.query("UPDATE group_members SET member = false WHERE conversation_id = $1", [conversationId]);
        return members.rows.map((m) => m.user_id);
      });
    },
    health: () => sql.health(),
    close: () => sql.close(),
  };
}
