// One server bootstrap for every service: a single port speaking gRPC (HTTP/2 cleartext),
// gRPC-Web and Connect (HTTP/1.1 and HTTP/2), with grpc.health.v1, server reflection v1 and
// v1alpha, /metrics, optional WebSocket upgrades (the edge), and a bounded graceful shutdown.
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";
import { Health } from "../../../gen/grpc/health/v1/health_pb.js";
import { UnaryGrpcRoutes } from "./grpc-unary.js";
import { HealthRegistry } from "./health.js";
import type { Logger } from "./log.js";
import { registerReflection } from "./reflection.js";
import { serverTelemetryInterceptor } from "./telemetry/connect.js";
import { initTelemetry } from "./telemetry/index.js";
import { validationInterceptor } from "./validation.js";

/** The largest request a service's gRPC server reads unless told otherwise (`readMaxBytes`). */
export const DEFAULT_READ_MAX_BYTES = 4 * 1024 * 1024;

export interface ServerOptions {
  /** The service name, for logs. */
  name: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Registers the service's RPC handlers. */
  routes: (router: ConnectRouter) => void;
  /** The services `routes` registers: listed by reflection and health. */
  services: DescService[];
  logger: Logger;
  /** Largest request message accepted, in bytes (default DEFAULT_READ_MAX_BYTES). */
  readMaxBytes?: number;
  /** Handles HTTP/1.1 upgrade requests (WebSocket on the edge). */
  onUpgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Bound on graceful shutdown. */
  shutdownTimeoutMs: number;
  /** OTLP/HTTP endpoint for traces; unset: spans are not exported. */
  otlpEndpoint?: string | undefined;
  /** Extra interceptors (the edge's authentication), run before request validation. */
  interceptors?: Interceptor[];
  /**
   * Liveness of client connections (the edge's public port): every HTTP/2 connection is pinged
   * this often and closed when the previous ping is still unanswered (a Connect stream over a
   * vanished network ends within two intervals); HTTP/1.1 sockets get TCP keepalive probes.
   */
  keepAliveMs?: number;
}

export interface RunningServer {
  readonly port: number;
  /** host:port to give peers. */
  readonly address: string;
  readonly health: HealthRegistry;
  /** Stops accepting, lets in-flight calls finish within the bound, then cuts what is left. */
  close(): Promise<void>;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0");

function destroyOnError(this: net.Socket): void {
  this.destroy();
}

/** A handler failure that is not a ConnectError is a bug: log it whole; the client sees "internal". */
function logUnexpected(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (!(err instanceof ConnectError)) logger.error({ err, rpc: `${req.service.typeName}/${req.method.name}` }, "unexpected error in handler");
      throw err;
    }
  };
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const telemetry = initTelemetry({
    serviceName: opts.name,
    ...(opts.otlpEndpoint === undefined ? {} : { otlpEndpoint: opts.otlpEndpoint }),
  });
  const health = new HealthRegistry(opts.services.map((s) => s.typeName));
  const interceptors: Interceptor[] = [serverTelemetryInterceptor(), logUnexpected(opts.logger), ...(opts.interceptors ?? []), validationInterceptor];
  const readMaxBytes = opts.readMaxBytes ?? DEFAULT_READ_MAX_BYTES;
  // Unary gRPC calls (every call between services) are answered by `unary`; connect's adapter
  // takes the rest (see grpc-unary.ts).
  const unary = new UnaryGrpcRoutes(interceptors, readMaxBytes);
  const rpc = connectNodeAdapter({
    interceptors,
    readMaxBytes,
    routes(connectRouter) {
      const router = unary.recording(connectRouter);
      opts.routes(router);
      router.service(Health, health.impl());
      registerReflection(router, [...opts.services, Health]);
    },
  });
  const handle = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    if (req.method === "GET" && req.url === "/metrics") {
      telemetry.metricsHandler(req as http.IncomingMessage, res as http.ServerResponse);
      return;
    }
    if (req.httpVersionMajor === 2 && unary.handle(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse)) return;
    rpc(req, res);
  };

  const h1 = http.createServer(handle);
  h1.keepAliveTimeout = 75_000;
  const h2 = http2.createServer({ maxSessionMemory: 64 }, handle);
  if (opts.onUpgrade !== undefined) h1.on("upgrade", opts.onUpgrade);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  let pinger: NodeJS.Timeout | undefined;
  if (opts.keepAliveMs !== undefined) {
    const unanswered = new WeakSet<http2.ServerHttp2Session>();
    pinger = setInterval(() => {
      for (const session of sessions) {
        if (unanswered.has(session)) {
          session.destroy();
          continue;
        }
        unanswered.add(session);
        session.ping((err) => {
          if (err === null) unanswered.delete(session);
        });
      }
    }, opts.keepAliveMs);
    pinger.unref();
  }

  // One TCP listener; each connection goes to the HTTP/2 or the HTTP/1.1 server by its first bytes.
  const sockets = new Set<net.Socket>();
  // Shared listeners (`this` is the socket): a long-lived idle connection costs no closures here.
  const forget = function (this: net.Socket) {
    sockets.delete(this);
  };
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", forget);
    socket.setNoDelay(true);
    if (opts.keepAliveMs !== undefined) socket.setKeepAlive(true, opts.keepAliveMs);
    let head = Buffer.alloc(0);
    const route = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, HTTP2_PREFACE.length);
      const isH2 = head.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      if (isH2 && head.length < HTTP2_PREFACE.length) return; // wait for more bytes
      socket.off("data", route);
      socket.pause();
      socket.unshift(head);
      if (isH2) {
        // The HTTP/2 session reads what is already buffered itself; resuming would drop it.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", route);
    socket.on("error", destroyOnError);
  });

  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(opts.port, opts.host, () => resolve());
  });
  const bound = listener.address() as net.AddressInfo;
  const host = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  const address = `${host}:${bound.port}`;
  opts.logger.info({ address }, `${opts.name} listening (gRPC, gRPC-Web, Connect)`);

  let closing: Promise<void> | undefined;
  return {
    port: bound.port,
    address,
    health,
    close() {
      closing ??= (async () => {
        clearInterval(pinger);
        health.shutdown();
        listener.close();
        h1.closeIdleConnections();
        for (const session of sessions) session.close(); // GOAWAY: in-flight streams finish
        const done = Promise.all([
          new Promise<void>((r) => h1.close(() => r())),
          new Promise<void>((r) => h2.close(() => r())),
        ]);
        const timer = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, opts.shutdownTimeoutMs);
        await done;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
