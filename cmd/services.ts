// The table of services: name, entry, default port, the *_SERVICE_ADDR setting peers use to find
// it, and its production drivers. In start order: a service starts after the peers it calls at startup.
import type { Env } from "../packages/runtime/src/config.js";
import type { ServiceMain, StoreMigrate } from "../packages/runtime/src/service.js";
import * as connection from "../services/connection/src/main.js";
import * as edge from "../services/edge/src/main.js";
import * as group from "../services/group/src/main.js";
import * as messageStore from "../services/message-store/src/main.js";
import * as presence from "../services/presence/src/main.js";
import * as push from "../services/push/src/main.js";
import * as routing from "../services/routing/src/main.js";

export interface ServiceEntry {
  name: string;
  main: ServiceMain;
  port: number;
  addrSetting: string;
  /** Settings of the cluster mode (production drivers). */
  clusterEnv: Env;
  /** Its store's migrations, for services with a store that has a schema (`chat migrate`). */
  migrate?: StoreMigrate;
}

export const SERVICES = [
  { name: "group", main: group.main, migrate: group.migrate, port: group.DEFAULT_PORT, addrSetting: "GROUP_SERVICE_ADDR", clusterEnv: { STORE_DRIVER: "postgres" } },
  { name: "connection", main: connection.main, port: connection.DEFAULT_PORT, addrSetting: "CONNECTION_SERVICE_ADDR", clusterEnv: { STORE_DRIVER: "redis" } },
  { name: "presence", main: presence.main, port: presence.DEFAULT_PORT, addrSetting: "PRESENCE_SERVICE_ADDR", clusterEnv: { STORE_DRIVER: "redis" } },
  { name: "message-store", main: messageStore.main, migrate: messageStore.migrate, port: messageStore.DEFAULT_PORT, addrSetting: "MESSAGE_STORE_SERVICE_ADDR", clusterEnv: { STORE_DRIVER: "cassandra", INSTANCE_NAME: "message-store-0" } },
  { name: "push", main: push.main, migrate: push.migrate, port: push.DEFAULT_PORT, addrSetting: "PUSH_SERVICE_ADDR", clusterEnv: { STORE_DRIVER: "postgres" } },
  { name: "routing", main: routing.main, port: routing.DEFAULT_PORT, addrSetting: "ROUTING_SERVICE_ADDR", clusterEnv: {} },
  { name: "edge", main: edge.main, port: edge.DEFAULT_PORT, addrSetting: "EDGE_SERVICE_ADDR", clusterEnv: {} },
] as const satisfies readonly ServiceEntry[];

export type ServiceName = (typeof SERVICES)[number]["name"];

export const PUBLIC_PORT = edge.DEFAULT_PUBLIC_PORT;

export function findService(name: string): ServiceEntry | undefined {
  return SERVICES.find((s) => s.name === name);
}

/**
 * Peer addresses of every service on loopback, each default port plus `offset`, and the edge's
 * public port; settings already in `env` win.
 */
export function meshAddresses(env: Env, offset = 0): Env {
  const host = env["HOST"] ?? "127.0.0.1";
  const out: Env = { PUBLIC_PORT: String(PUBLIC_PORT + offset) };
  for (const s of SERVICES) out[s.addrSetting] = `${host}:${s.port + offset}`;
  return { ...out, ...env };
}

/** The PORT of a service, from its address setting. */
export const portOf = (service: ServiceEntry, env: Env): string => env[service.addrSetting]?.split(":").pop() ?? String(service.port);

/**
 * The JWT secret of the local modes (`chat embedded`, `chat cluster`, `chat token`) when none is
 * configured. For development only: production sets JWT_HS256_SECRET or a JWKS.
 */
export const DEV_JWT_SECRET = "chat-local-development-secret";

/** Adds the development JWT secret when no JWT key is configured. */
export function withDevSecret(env: Env): Env {
  const configured = ["JWT_HS256_SECRET", "JWT_JWKS_FILE", "JWT_JWKS_URL"].some((k) => (env[k] ?? "") !== "");
  return configured ? env : { ...env, JWT_HS256_SECRET: DEV_JWT_SECRET };
}
