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
];
