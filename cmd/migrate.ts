// `chat migrate`: applies every store's schema migrations with the production drivers (those of
// `chat cluster`: PostgreSQL for group and push, Cassandra for message-store), then exits. The
// Helm chart runs it as a pre-install/pre-upgrade Job. Each service still applies its own
// migrations at startup (idempotent and safe when several processes start at once), so this is
// an ordering guarantee for rollouts, not a second copy of the migration code: it calls the
// `migrate` each service's main.ts exports.
import type { Env } from "../packages/runtime/src/config.js";
import { createLogger } from "../packages/runtime/src/log.js";
import { SERVICES } from "./services.js";

export async function migrateAll(env: Env): Promise<Record<string, string[]>> {
  const logger = createLogger("migrate");
  const applied: Record<string, string[]> = {};
  for (const s of SERVICES) {
    if (!("migrate" in s)) continue;
    const ids = await s.migrate({ ...env, ...s.clusterEnv });
    logger.info({ service: s.name, applied: ids }, `${s.name}: ${ids.length === 0 ? "up to date" : `applied ${ids.join(", ")}`}`);
    applied[s.name] = ids;
  }
  return applied;
}
