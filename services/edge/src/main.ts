// Wiring only: config -> telemetry -> drivers -> servers. The edge has two ports: the internal
// gRPC port (EdgeService, health, reflection) and the public port (ChatService over Connect,
// gRPC and gRPC-Web; WebSocket with issue #3). It registers itself with the connection service.
import { hostname } from "node:os";
import { ConnectionService } from "../../../gen/chat/connection/v1/connection_pb.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import { address, commonSettings, int, loadConfig, port, z, type Env } from "../../../packages/runtime/src/config.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { startServer } from "../../../packages/runtime/src/server.js";
import { serve, type ServiceMain } from "../../../packages/runtime/src/service.js";
import { ConnectionTable } from "./domain/connections.js";
import { createEdgeHandler } from "./handler.js";
import { publicRoutes, publicServices, routes, services } from "./routes.js";

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
  CONNECTION_SERVICE_ADDR: address(),
  EDGE_HEARTBEAT_MS: int(5_000, 100),
  /** Largest client frame or request, in bytes. */
  MAX_FRAME_BYTES: int(256 * 1024, 1024),
});

export const main: ServiceMain = async (env: Env) => {
  const config = loadConfig(Config, env);
  const logger = createLogger("edge");
  const table = new ConnectionTable();
  const publicServer = await startServer({
    name: "edge-public",
    host: config.PUBLIC_HOST,
    port: config.PUBLIC_PORT,
    services: publicServices,
    routes: publicRoutes({}),
    logger,
    readMaxBytes: config.MAX_FRAME_BYTES,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  const publicUrl = config.PUBLIC_URL ?? `http://${publicServer.address}`;
  const internal = await serve({
    name: "edge",
    config,
    services,
    routes: routes(createEdgeHandler(table)),
    logger,
    publicUrls: { connect: publicUrl, websocket: `${publicUrl.replace(/^http/, "ws")}/ws` },
    closers: [() => publicServer.close(), () => clearInterval(heartbeat)],
  });

  // Service discovery: register now and on every heartbeat, with the current load.
  const connection = peerClient(ConnectionService, config.CONNECTION_SERVICE_ADDR);
  const register = async () => {
    try {
      await connection.registerEdge({
        edge: {
          edgeId: config.EDGE_ID,
          grpcAddress: internal.address,
          connectUrl: publicUrl,
          websocketUrl: `${publicUrl.replace(/^http/, "ws")}/ws`,
          connections: table.size,
          draining: table.draining,
        },
      });
    } catch (err) {
      logger.warn({ err }, "edge registration failed; retrying on the next heartbeat");
    }
  };
  await register();
  const heartbeat = setInterval(() => void register(), config.EDGE_HEARTBEAT_MS);
  heartbeat.unref();
  return internal;
};
