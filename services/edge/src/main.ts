// Wiring only: config -> telemetry -> drivers -> servers. The edge has two ports: the internal
// gRPC port (EdgeService, health, reflection) and the public port (ChatService over Connect, gRPC
// and gRPC-Web, and the WebSocket endpoint /ws). It registers itself with the connection service.
import { hostname } from "node:os";
import { ConnectionService } from "../../../gen/chat/connection/v1/connection_pb.js";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import { PresenceService } from "../../../gen/chat/presence/v1/presence_pb.js";
import { PushService } from "../../../gen/chat/push/v1/push_pb.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import { address, commonSettings, ConfigError, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { EDGE_LIST_MAX_AGE_MS } from "../../../packages/runtime/src/edge-delivery.js";
import { startServer } from "../../../packages/runtime/src/server.js";
import { serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { authInterceptor } from "./api/caller.js";
import { createChatService } from "./api/connect.js";
import { createOperations, DEFAULT_APPEND_CALLS_IN_FLIGHT } from "./api/operations.js";
import { createWebSocketGateway } from "./api/websocket.js";
import { createVerifier } from "./auth/verify.js";
import { ConnectionTable } from "./domain/connections.js";
import { meter } from "../../../packages/runtime/src/telemetry/index.js";
import { createEdgeHandler } from "./handler.js";
import { startMemoryTrim } from "./memory.js";
import { publicRoutes, publicServices, routes, services } from "./routes.js";
import { SessionManager } from "./sessions.js";

export const DEFAULT_PORT = 9100;
export const DEFAULT_PUBLIC_PORT = 8080;

const Config = z.object({
  ...commonSettings,
  PORT: port(DEFAULT_PORT),
  PUBLIC_PORT: port(DEFAULT_PUBLIC_PORT),
  /** Interface of the public port. */
  PUBLIC_HOST: z.string().default("127.0.0.1"),
  /** The URL clients use to reach this edge (behind an ingress it differs from the bind address). */
  PUBLIC_URL: z.string().url().optional(),
  EDGE_ID: z.string().min(1).max(128).default(`${hostname()}-${process.pid}`),
  /** host:port peers (routing) dial to reach this edge's gRPC port; default the bound HOST:PORT. In Kubernetes: the pod IP. */
  ADVERTISE_ADDR: address().optional(),
  CONNECTION_SERVICE_ADDR: address(),
  GROUP_SERVICE_ADDR: address(),
  MESSAGE_STORE_SERVICE_ADDR: address(),
  PRESENCE_SERVICE_ADDR: address(),
  PUSH_SERVICE_ADDR: address(),
  EDGE_HEARTBEAT_MS: int(5_000, 100),
  SESSION_REFRESH_MS: int(10_000, 100),
  /** Clients are pinged this often; one silent for two intervals is dropped (and goes offline). */
  WS_PING_MS: int(10_000, 100),
  /** On shutdown (SIGTERM) and EdgeService.Drain: how long clients get to move to another edge. 0: no drain. */
  EDGE_DRAIN_MS: int(10_000, 0),
  EDGE_MAX_CONNECTING: int(1_000, 1),
  /** How often the edge checks whether to give memory back after a connection surge (memory.ts). 0: never. */
  EDGE_MEMORY_TRIM_MS: int(10_000, 0),
  /** AppendMany calls to the message store in flight at once; sends that arrive meanwhile go together in the next one. */
  EDGE_APPEND_CALLS_IN_FLIGHT: int(DEFAULT_APPEND_CALLS_IN_FLIGHT, 1),
  /** Largest client frame or request, in bytes. */
  MAX_FRAME_BYTES: int(512 * 1024, 1024),
  WS_FRAMES_PER_SECOND: int(100, 1),
  WS_FRAME_BURST: int(200, 1),
  WS_MAX_BUFFERED_BYTES: int(8 * 1024 * 1024, 1024),
  JWT_HS256_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  JWT_JWKS_FILE: z.string().optional(),
  JWT_JWKS_URL: z.string().url().optional(),
  JWT_ISSUER: z.string().optional(),
  JWT_AUDIENCE: z.string().optional(),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  if (config.JWT_HS256_SECRET === undefined && config.JWT_JWKS_FILE === undefined && config.JWT_JWKS_URL === undefined) {
    throw new ConfigError(["JWT_HS256_SECRET, JWT_JWKS_FILE or JWT_JWKS_URL: one is required to authenticate clients"]);
  }
  const logger = createLogger("edge");
  const verify = createVerifier(config);
  const table = new ConnectionTable();
  // chat_edge_connections (Prometheus): the live client connections, what the chart's HPA can scale on.
  meter("chat.edge")
    .createObservableGauge("chat.edge.connections", { description: "Live client connections (WebSocket and streams) on this edge" })
    .addCallback((r) => r.observe(table.size));
  const connection = peerClient(ConnectionService, config.CONNECTION_SERVICE_ADDR);
  const presence = peerClient(PresenceService, config.PRESENCE_SERVICE_ADDR);
  const ops = createOperations({
    group: peerClient(GroupService, config.GROUP_SERVICE_ADDR),
    messageStore: peerClient(MessageStoreService, config.MESSAGE_STORE_SERVICE_ADDR),
    connection,
    presence,
    push: peerClient(PushService, config.PUSH_SERVICE_ADDR),
  }, config.EDGE_APPEND_CALLS_IN_FLIGHT);
  const sessions = new SessionManager({ edgeId: config.EDGE_ID, table, connection, presence, refreshMs: config.SESSION_REFRESH_MS, maxRegistering: config.EDGE_MAX_CONNECTING, logger });
  const stopTrim = startMemoryTrim({ everyMs: config.EDGE_MEMORY_TRIM_MS, connections: () => table.size, logger });
  const ws = createWebSocketGateway({
    ops,
    sessions,
    verify,
    logger,
    maxFrameBytes: config.MAX_FRAME_BYTES,
    pingIntervalMs: config.WS_PING_MS,
    frameRate: config.WS_FRAMES_PER_SECOND,
    frameBurst: config.WS_FRAME_BURST,
    maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
    draining: () => table.draining,
  });
  const publicServer = await startServer({
    name: "edge-public",
    host: config.PUBLIC_HOST,
    port: config.PUBLIC_PORT,
    services: publicServices,
    routes: publicRoutes(createChatService(ops, sessions, table)),
    interceptors: [authInterceptor(verify)],
    onUpgrade: (req, socket, head) => ws.onUpgrade(req, socket, head),
    keepAliveMs: config.WS_PING_MS,
    logger,
    readMaxBytes: config.MAX_FRAME_BYTES,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  const publicUrl = config.PUBLIC_URL ?? `http://${publicServer.address}`;
  const websocketUrl = `${publicUrl.replace(/^http/, "ws")}/ws`;
  // Draining: no new clients (the registration says so at once, so AssignEdge stops choosing this
  // edge), and every connected client is asked to reconnect elsewhere and resume from its cursors.
  const drain = async (withinMs: number): Promise<number> => {
    const clients = sessions.drain("edge draining", withinMs);
    await register();
    return clients;
  };
  const internal = await serve({
    name: "edge",
    config,
    services,
    routes: routes(createEdgeHandler({ table, drain, defaultDrainMs: config.EDGE_DRAIN_MS || 10_000 })),
    logger,
    publicUrls: { connect: publicUrl, websocket: websocketUrl },
    beforeClose: async () => {
      if (config.EDGE_DRAIN_MS === 0 || table.size === 0) return;
      const clients = await drain(config.EDGE_DRAIN_MS);
      logger.info({ clients, withinMs: config.EDGE_DRAIN_MS }, "draining before shutdown");
      await sessions.emptied(config.EDGE_DRAIN_MS + 1_000);
    },
    closers: [() => publicServer.close(), () => ws.close(), () => sessions.stop(), () => clearInterval(heartbeat), stopTrim],
  });

  // Service discovery: register now and on every heartbeat, with the current load. Clients are
  // taken only a moment after the first registration that went through: routing's list of edges
  // (deliveries by user) may be EDGE_LIST_MAX_AGE_MS old, and must name this edge once it holds a client.
  let accepting: Promise<void> | undefined;
  async function register(): Promise<void> {
    try {
      await connection.registerEdge({
        edge: { edgeId: config.EDGE_ID, grpcAddress: config.ADVERTISE_ADDR ?? internal.address, connectUrl: publicUrl, websocketUrl, connections: table.size, draining: table.draining },
      });
      accepting ??= new Promise<void>((resolve) => setTimeout(resolve, EDGE_LIST_MAX_AGE_MS + 250)).then(() => sessions.accept());
    } catch (err) {
      logger.warn({ err }, "edge registration failed; retrying on the next heartbeat");
    }
  }
  await register();
  await accepting; // "up" means taking clients (unless the registration failed: then from the first one that does not)
  const heartbeat = setInterval(() => void register(), config.EDGE_HEARTBEAT_MS);
  heartbeat.unref();
  return internal;
};
