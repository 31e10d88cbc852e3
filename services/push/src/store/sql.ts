// The push store in SQL, over the shared Sql port: the same code on PGlite and PostgreSQL.
import type { Sql } from "../../../../packages/runtime/src/sql/port.js";
import type { ClaimResult, PushStore, SendKey, TargetRow } from "./port.js";

interface Row {
  target_id: string;
  user_id: string;
  device_id: string;
  platform: number;
  details: Record<string, unknown>;
  updated_at: Date;
}

const COLUMNS = "target_id, user_id, device_id, platform, details, updated_at";
const toTarget = (r: Row): TargetRow => ({ targetId: r.target_id, userId: r.user_id, deviceId: r.device_id, platform: r.platform, details: r.details, updatedAt: r.updated_at });

export function createSqlPushStore(sql: Sql): PushStore {
  const claim = async (key: SendKey, owner: string, leaseMs: number): Promise<ClaimResult> => {
    const claimed = await sql.query(
      `INSERT INTO push_sent (message_id, target_id, state, owner) VALUES ($1, $2, 'sending', $3)
       ON CONFLICT (message_id, target_id) DO UPDATE SET owner = excluded.owner, claimed_at = now()
         WHERE push_sent.state = 'sending'
           AND (push_sent.owner = excluded.owner OR push_sent.claimed_at < now() - $4::double precision * interval '1 millisecond')
       RETURNING state`,
      [key.messageId, key.targetId, owner, leaseMs],
    );
    if (claimed.rowCount > 0) return "claimed";
    const r = await sql.query<{ state: string }>("SELECT state FROM push_sent WHERE message_id = $1 AND target_id = $2", [key.messageId, key.targetId]);
    // Released between the two statements: claim again.
    if (r.rows[0] === undefined) return claim(key, owner, leaseMs);
    return r.rows[0].state === "done" ? "done" : "held";
  };

  return {
    async upsertTarget(t, maxPerUser) {
      return sql.transaction(async (tx) => {
        // Serialise one user's registrations so the cap holds under concurrent calls.
        if (sql.driver === "postgres") await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`push:${t.userId}`]);
        const updated = await tx.query<Row>(
          `UPDATE push_targets SET details = $4, updated_at = now() WHERE user_id = $1 AND device_id = $2 AND platform = $3 RETURNING ${COLUMNS}`,
          [t.userId, t.deviceId, t.platform, JSON.stringify(t.details)],
        );
        if (updated.rows[0] !== undefined) return toTarget(updated.rows[0]);
        const count = await tx.query<{ n: number }>("SELECT count(*)::int AS n FROM push_targets WHERE user_id = $1", [t.userId]);
        if ((count.rows[0]?.n ?? 0) >= maxPerUser) return "limit";
        const inserted = await tx.query<Row>(
          `INSERT INTO push_targets (target_id, user_id, device_id, platform, details) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
          [t.targetId, t.userId, t.deviceId, t.platform, JSON.stringify(t.details)],
        );
        return toTarget(inserted.rows[0]);
      });
    },
    async listTargets(userId) {
      return (await sql.query<Row>(`SELECT ${COLUMNS} FROM push_targets WHERE user_id = $1 ORDER BY updated_at DESC, target_id`, [userId])).rows.map(toTarget);
    },
    async removeTarget(userId, targetId) {
      return (await sql.query("DELETE FROM push_targets WHERE user_id = $1 AND target_id = $2", [userId, targetId])).rowCount > 0;
    },
    async setMute(userId, conversationId, until) {
      if (until === undefined) await sql.query("DELETE FROM push_mutes WHERE user_id = $1 AND conversation_id = $2", [userId, conversationId]);
      else
        await sql.query(
          `INSERT INTO push_mutes (user_id, conversation_id, muted_until) VALUES ($1, $2, $3)
           ON CONFLICT (user_id, conversation_id) DO UPDATE SET muted_until = excluded.muted_until`,
          [userId, conversationId, until],
        );
    },
    async mutedUntil(userId, conversationId) {
      const r = await sql.query<{ muted_until: Date }>("SELECT muted_until FROM push_mutes WHERE user_id = $1 AND conversation_id = $2", [userId, conversationId]);
      return r.rows[0]?.muted_until;
    },
    async setShowPreviews(userId, show) {
      await sql.query(
        "INSERT INTO push_settings (user_id, show_previews) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET show_previews = excluded.show_previews",
        [userId, show],
      );
    },
    async showPreviews(userId) {
      return (await sql.query<{ show_previews: boolean }>("SELECT show_previews FROM push_settings WHERE user_id = $1", [userId])).rows[0]?.show_previews ?? true;
    },
    async removeGoneTarget(t) {
      return (await sql.query("DELETE FROM push_targets WHERE target_id = $1 AND details = $2::jsonb", [t.targetId, JSON.stringify(t.details)])).rowCount > 0;
    },
    claimSend: claim,
    async finishSend(key, owner) {
      await sql.query("UPDATE push_sent SET state = 'done' WHERE message_id = $1 AND target_id = $2 AND owner = $3", [key.messageId, key.targetId, owner]);
    },
    async releaseSend(key, owner) {
      await sql.query("DELETE FROM push_sent WHERE message_id = $1 AND target_id = $2 AND owner = $3 AND state = 'sending'", [key.messageId, key.targetId, owner]);
    },
    async pruneSent(before) {
      return (await sql.query("DELETE FROM push_sent WHERE claimed_at < $1", [before])).rowCount;
    },
    health: () => sql.health(),
    close: () => sql.close(),
  };
}
