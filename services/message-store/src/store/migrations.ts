// Schemas of both drivers. Append-only lists: a released migration is never edited.

/** Embedded driver (PGlite; the same SQL runs on PostgreSQL). */
export const sqlMigrations = [
  {
    id: "001_messages",
    sql: `
      CREATE TABLE ms_messages (
        conversation_id  text        NOT NULL,
        seq              bigint      NOT NULL,
        message_id       text        NOT NULL,
        client_msg_id    text        NOT NULL,
        sender_id        text        NOT NULL,
        sender_device_id text        NOT NULL,
        server_time      timestamptz NOT NULL,
        content          bytea       NOT NULL,
        PRIMARY KEY (conversation_id, seq)
      );
      CREATE UNIQUE INDEX ms_messages_idempotency ON ms_messages (conversation_id, sender_id, client_msg_id);
      CREATE TABLE ms_heads (
        conversation_id text   PRIMARY KEY,
        last_seq        bigint NOT NULL
      );`,
  },
];

sqlMigrations.push({
  id: "002_receipts",
  sql: `
    CREATE TABLE ms_receipts (
      conversation_id text   NOT NULL,
      user_id         text   NOT NULL,
      delivered_seq   bigint NOT NULL,
      read_seq        bigint NOT NULL,
      PRIMARY KEY (conversation_id, user_id)
    );`,
});

sqlMigrations.push({
  id: "003_inbox",
  sql: `
    CREATE TABLE ms_inbox (
      user_id         text   NOT NULL,
      conversation_id text   NOT NULL,
      last_seq        bigint NOT NULL,
      PRIMARY KEY (user_id, conversation_id)
    );`,
});

/** Cassandra driver. Partitions are (conversation_id, bucket) with bucket = (seq - 1) / 1000. */
export const cqlMigrations = [
  {
    id: "001_messages",
    cql: [
      `CREATE TABLE IF NOT EXISTS messages (
        conversation_id  text,
        bucket           int,
        seq              bigint,
        message_id       text,
        client_msg_id    text,
        sender_id        text,
        sender_device_id text,
        server_time      timestamp,
        content          blob,
        PRIMARY KEY ((conversation_id, bucket), seq)
      ) WITH CLUSTERING ORDER BY (seq ASC)`,
      // A hint of the last seq; the truth is the highest stored seq (see lastSeq).
      `CREATE TABLE IF NOT EXISTS message_heads (
        conversation_id text PRIMARY KEY,
        last_seq        bigint
      )`,
      `CREATE TABLE IF NOT EXISTS message_idempotency (
        conversation_id text,
        sender_id       text,
        client_msg_id   text,
        seq             bigint,
        message_id      text,
        PRIMARY KEY ((conversation_id, sender_id, client_msg_id))
      )`,
    ],
  },
];

cqlMigrations.push({
  id: "002_receipts",
  cql: [
    `CREATE TABLE IF NOT EXISTS receipts (
      conversation_id text,
      user_id         text,
      delivered_seq   bigint,
      read_seq        bigint,
      PRIMARY KEY ((conversation_id), user_id)
    )`,
  ],
});

cqlMigrations.push({
  id: "003_inbox",
  cql: [
    `CREATE TABLE IF NOT EXISTS inbox (
      user_id         text,
      conversation_id text,
      last_seq        bigint,
      PRIMARY KEY ((user_id), conversation_id)
    )`,
  ],
});

cqlMigrations.push({
  id: "004_seq_leases",
  cql: [
    // One row per shard of conversations: which replica writes their seqs (store/leases.ts).
    `CREATE TABLE IF NOT EXISTS seq_leases (
      shard      int PRIMARY KEY,
      owner      text,
      address    text,
      epoch      bigint,
      expires_at bigint
    )`,
  ],
});

cqlMigrations.push({
  id: "005_message_batch_first",
  cql: [
    // Each message row names the first seq of the part of its batch it was written in (at most
    // 100 messages at once, store/cassandra.ts): after a new tenure only the idempotency rows of
    // the part written last are written again.
    "ALTER TABLE messages ADD IF NOT EXISTS batch_first_seq bigint",
  ],
});
