// The two ways the mesh runs, for tests that drive it like a client: every service its own
// process on the real infrastructure (cluster), or all in one process with embedded drivers.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startCluster, startEmbeddedProcess, type ClusterProcess } from "../../cmd/cluster.js";
import { DEV_JWT_SECRET, PUBLIC_PORT, type ServiceName } from "../../cmd/services.js";
import { mintToken } from "../../cmd/token.js";
import type { Env } from "../../packages/runtime/src/config.js";
import { ChatSocket } from "../../packages/client/src/websocket.js";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ChatService } from "../../gen/chat/api/v1/api_pb.js";
import { infraEnv } from "./infra.js";
import { scratchDir } from "./scratch.js";

export interface Mode {
  name: string;
  /** What span resources name a service ("chat" for the one embedded process). */
  spanService: (service: ServiceName) => string;
  bus: string;
  portOffset: number;
  start(env: Env): Promise<ClusterProcess[]>;
}

export function modes(suite: string, basePortOffset: number): Mode[] {
  const dataDir = scratchDir(`${suite}-embedded`);
  const common = { JWT_HS256_SECRET: DEV_JWT_SECRET };
  return [
    {
      name: `cluster (every service its own process, real infrastructure): ${suite}`,
      spanService: (s) => s,
      bus: "kafka",
      portOffset: basePortOffset,
      start: (env) =>
        startCluster({
          // Each suite's cluster has its own keyspace, Redis keys and bus namespace: suites run side by side.
          env: { ...infraEnv(), ...common, CASSANDRA_KEYSPACE: `chat_${suite}`, REDIS_KEY_PREFIX: `chat-${suite}`, ...env },
          portOffset: basePortOffset,
          logDir: `var/test-logs/${suite}-cluster`,
          busNamespace: `${suite}.`,
        }),
    },
    {
      name: `embedded (one process, make run): ${suite}`,
      spanService: () => "chat",
      bus: "memory",
      portOffset: basePortOffset + 1000,
      start: (env) => startEmbeddedProcess({ env: { ...common, ...env }, portOffset: basePortOffset + 1000, logDir: `var/test-logs/${suite}-embedded`, dataDir }),
    },
  ];
}

/** The public WebSocket and Connect URLs of a mode. */
export function publicUrls(mode: Mode): { ws: string; connect: string } {
  const port = PUBLIC_PORT + mode.portOffset;
  return { ws: `ws://127.0.0.1:${port}/ws`, connect: `http://127.0.0.1:${port}` };
}

export const tokenFor = (userId: string): Promise<string> => mintToken({ JWT_HS256_SECRET: DEV_JWT_SECRET }, userId);

/** A Connect client of the public API at `baseUrl`, as the token's user on one device. */
export function apiClient(baseUrl: string, token: string, deviceId = "default"): Client<typeof ChatService> {
  return createClient(
    ChatService,
    createConnectTransport({
      baseUrl,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          req.header.set("chat-device-id", deviceId);
          return next(req);
        },
      ],
    }),
  );
}

/** A Connect client of a mode's public API. */
export const connectClient = (mode: Mode, token: string, deviceId: string): Client<typeof ChatService> => apiClient(publicUrls(mode).connect, token, deviceId);

export function addressOf(processes: ClusterProcess[], name: ServiceName): string {
  return processes.find((p) => p.name === name)?.address ?? assert.fail(`${name} not started`);
}

/**
 * The clients of one suite run against a mode: user ids unique to the run (so runs on kept data
 * do not meet), WebSocket devices opened as those users, and one call that closes them all.
 */
export function runClients(mode: Mode) {
  const run = randomBytes(4).toString("hex");
  const sockets: ChatSocket[] = [];
  const user = (name: string) => `${name}-${run}`;
  return {
    run,
    user,
    open: async (name: string, deviceId = "phone", protocol: "chat.v1.proto" | "chat.v1.json" = "chat.v1.proto"): Promise<ChatSocket> => {
      const s = await ChatSocket.connect({ url: publicUrls(mode).ws, token: await tokenFor(user(name)), deviceId, protocol });
      sockets.push(s);
      return s;
    },
    closeAll: async (): Promise<void> => {
      await Promise.all(sockets.map((s) => s.close()));
    },
  };
}
