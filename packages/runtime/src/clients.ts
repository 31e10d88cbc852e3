// Clients of peer services: gRPC over one HTTP/2 connection per peer address, with trace context
// and client metrics on every call. Peers are found through *_SERVICE_ADDR settings.
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { Http2SessionManager } from "@connectrpc/connect-node";
import type { ClientHttp2Session } from "node:http2";
import { createUnaryGrpcTransport } from "./grpc-unary.js";
import { clientTelemetryInterceptor } from "./telemetry/connect.js";

const transports = new Map<string, Transport>();

/** The listener GuardedSessionManager adds to each session: the session is closing, nothing is left to do. */
export function ignoreLeftSessionError(): void {}

/**
 * connect-node's session manager, with every HTTP/2 session it opens kept from crashing the process.
 * When a peer is slow (overloaded), the manager's keepalive PING can time out after the manager has
 * already left that session and taken its "error" listener off; the session is then destroyed with
 * the "PING timed out" error and nobody listening, and Node throws it as an uncaught exception
 * (seen here: seven edges exited at once when the connection service fell behind). The session is
 * gone either way and the next call opens a new one, so a listener of our own, added once per
 * session, takes what the manager no longer hears.
 */
export class GuardedSessionManager extends Http2SessionManager {
  private readonly guarded = new WeakSet<ClientHttp2Session>();

  override async request(...args: Parameters<Http2SessionManager["request"]>): ReturnType<Http2SessionManager["request"]> {
    const stream = await super.request(...args);
    const session = stream.session as ClientHttp2Session | undefined;
    if (session !== undefined && !this.guarded.has(session)) {
      this.guarded.add(session);
      session.on("error", ignoreLeftSessionError);
    }
    return stream;
  }
}

/**
 * The shared transport to a peer at host:port. Calls between services are not compressed either
 * way (gRPC's own default; connect-node's would have peers gzip every answer over 1 KiB, such as
 * an edge's Deliver answer naming a group's 500 reached users): inside a cluster that costs both
 * sides CPU to save bandwidth that is not short.
 */
export function peerTransport(address: string): Transport {
  let transport = transports.get(address);
  if (transport === undefined) {
    const baseUrl = `http://${address}`;
    transport = createUnaryGrpcTransport({
      baseUrl,
      interceptors: [clientTelemetryInterceptor()],
      sessionManager: new GuardedSessionManager(baseUrl, { pingIntervalMs: 10_000, idleConnectionTimeoutMs: 60_000 }),
      defaultTimeoutMs: 10_000,
    });
    transports.set(address, transport);
  }
  return transport;
}

/** A typed client of `service` at host:port. */
export function peerClient<S extends DescService>(service: S, address: string): Client<S> {
  return createClient(service, peerTransport(address));
}
