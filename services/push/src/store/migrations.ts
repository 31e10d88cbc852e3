// The push service's schema (PostgreSQL dialect; PGlite runs the same). Append-only list.
export const migrations = [
  {
    id: "001_targets",
    sql: `
      CREATE TABLE push_targets (
        target_id  text        PRIMARY KEY,
        user_id    text        NOT NULL,
        device_id  text        NOT NULL,
        platform   smallint    NOT NULL,
        details    jsonb       NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (user_id, device_id, platform)
      );
      CREATE TABLE push_mutes (
        user_id         text        NOT NULL,
        conversation_id text        NOT NULL,
        muted_until     timestamptz NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
      );
      CREATE TABLE push_settings (
        user_id       text    PRIMARY KEY,
        show_previews boolean NOT NULL
      );`,
  },
  {
    // Sent-records: a (message, target) pair is claimed before its notification is sent, so a
    // consumer killed and restarted (or a batch seen again) never sends it twice. A claim still
    // "sending" past its lease belongs to a process that died mid-send and may be taken over.
    id: "002_sent",
    sql: `
      CREATE TABLE push_sent (
        message_id text        NOT NULL,
        target_id  text        NOT NULL,
        state      text        NOT NULL CHECK (state IN ('sending', 'done')),
        owner      text        NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (message_id, target_id)
      );
      CREATE INDEX push_sent_claimed_at ON push_sent (claimed_at);`,
  },
];
