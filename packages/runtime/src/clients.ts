// Clients of peer services: gRPC over one HTTP/2 connection per peer address, with trace context
// and client metrics on every call. Peers are found through *_SERVICE_ADDR settings.
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { clientTelemetryInterceptor } from "./telemetry/connect.js";

const transports = new Map<string, Transport>();

/** The shared transport to a peer at host:port. */
export function peerTransport(address: string): Transport {
  let transport = transports.get(address);
  if (transport === undefined) {
    transport = createGrpcTransport({
      baseUrl: `http://${address}`,
      interceptors: [clientTelemetryInterceptor()],
      pingIntervalMs: 10_000,
      idleConnectionTimeoutMs: 60_000,
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
