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
  {
    // Group changes (issue #4). A change is recorded in two steps around the system message that
    // puts it in the history: begin (checked, and holding the conversation's pending_change so
    // changes of one conversation run one at a time), then apply with the message's seq.
    id: "002_group_changes",
    sql: `
      ALTER TABLE group_conversations
        ADD COLUMN membership_seq bigint NOT NULL DEFAULT 0,
        ADD COLUMN pending_change text,
        ADD COLUMN creator_id     text,
        ADD COLUMN create_key     text;
      CREATE UNIQUE INDEX group_conversations_create_key ON group_conversations (creator_id, create_key) WHERE create_key IS NOT NULL;
      ALTER TABLE group_members ADD COLUMN joined_seq bigint NOT NULL DEFAULT 0;
      CREATE TABLE group_changes (
        change_id       text        PRIMARY KEY,
        conversation_id text        NOT NULL REFERENCES group_conversations (conversation_id),
        kind            smallint    NOT NULL,
        actor_id        text        NOT NULL,
        user_ids        jsonb       NOT NULL,
        title           text        NOT NULL DEFAULT '',
        role            smallint    NOT NULL DEFAULT 0,
        applied_seq     bigint,
        created_at      timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX group_changes_pending ON group_changes (created_at) WHERE applied_seq IS NULL;`,
  },
];
