// Settings of the real infrastructure for tests (exported by infra/env.sh, which `make test`
// sources). A missing setting fails the test naming it: no test passes by skipping its server.
import assert from "node:assert/strict";
import type { Env } from "../../packages/runtime/src/config.js";

const NAMES = ["PG_URL", "REDIS_URL", "KAFKA_BROKERS", "CASSANDRA_CONTACT_POINTS", "CASSANDRA_LOCAL_DC", "CASSANDRA_KEYSPACE"] as const;

export function infraEnv(): Env {
  const env: Env = {};
  for (const name of NAMES) {
    const value = process.env[name];
    assert.ok(value, `${name} is not set: run the tests through 'make test' (it starts the real servers and sources infra/env.sh)`);
    env[name] = value;
  }
  return env;
}
