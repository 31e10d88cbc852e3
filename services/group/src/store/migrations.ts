// The group service's schema (PostgreSQL dialect; PGlite runs the same). Append-only list.
export const migrations = [
  {
    id: "001_conversations",
    sql: `
      CREATE TABLE group_conversations (
        conversation_id text        PRIMARY KEY,
        type            smallint    NOT NULL,
        title           text        NOT NULL DEFAULT '',
        member_limit    integer     NOT NULL,
        member_count    integer     NOT NULL DEFAULT 0,
        direct_key      text        UNIQUE,
        deleted         boolean     NOT NULL DEFAULT false,
        created_at      timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE group_members (
        conversation_id  text        NOT NULL REFERENCES group_conversations (conversation_id),
        user_id          text        NOT NULL,
        role             smallint    NOT NULL,
        member           boolean     NOT NULL DEFAULT true,
        visible_from_seq bigint      NOT NULL DEFAULT 0,
        removed_at_seq   bigint      NOT NULL DEFAULT 0,
        joined_at        timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (conversation_id, user_id)
      );
      CREATE INDEX group_members_by_user ON group_members (user_id, conversation_id) WHERE member;`,
  },
];
