// Connect interceptors: a SERVER span per incoming call (continuing the caller's W3C trace
// context from the request headers) and a CLIENT span per outgoing call (injecting it), with
// duration histograms rpc.server.duration / rpc.client.duration in seconds by service, method, code.
import { context, propagation, SpanKind, SpanStatusCode, trace, type Context } from "@opentelemetry/api";
import { Code, ConnectError, type Interceptor, type StreamRequest, type StreamResponse, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { meter, tracer } from "./index.js";

const headerGetter = {
  keys: (h: Headers) => [...h.keys()],
  get: (h: Headers, key: string) => h.get(key) ?? undefined,
};
const headerSetter = { set: (h: Headers, key: string, value: string) => h.set(key, value) };

type AnyRequest = UnaryRequest | StreamRequest;
type AnyResponse = UnaryResponse | StreamResponse;

const codeName = (err: unknown): string => (err === undefined ? "ok" : Code[ConnectError.from(err).code].toLowerCase());

function protocolOf(req: AnyRequest): string {
  const type = req.header.get("content-type") ?? "";
  if (type.startsWith("application/grpc-web")) return "grpc_web";
  if (type.startsWith("application/grpc")) return "grpc";
  return "connect_rpc";
}

/** Ends the span (and records the duration) when a unary call returns or a stream finishes. */
function finish(res: AnyResponse, done: (err?: unknown) => void): AnyResponse {
  if (!res.stream) {
    done();
    return res;
  }
  const source = res.message;
  return {
    ...res,
    message: (async function* () {
      try {
        yield* source;
        done();
      } catch (err) {
        done(err);
        throw err;
      }
    })(),
  };
}

function instrument(kind: SpanKind.SERVER | SpanKind.CLIENT): Interceptor {
  const side = kind === SpanKind.SERVER ? "server" : "client";
  // Literal names, so every metric name stays findable in the source (tests/deploy/dashboard.test.ts).
  const duration = meter("chat.rpc").createHistogram(kind === SpanKind.SERVER ? "rpc.server.duration" : "rpc.client.duration", {
    unit: "s",
    description: `Duration of ${side} RPCs`,
    // Seconds (the SDK's default boundaries, 0 to 10000, are for milliseconds: every RPC would land in le="5").
    advice: { explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] },
  });
  const t = tracer("chat.rpc");
  return (next) => async (req) => {
    const service = req.service.typeName;
    const method = req.method.name;
    const parent: Context = kind === SpanKind.SERVER ? propagation.extract(context.active(), req.header, headerGetter) : context.active();
    const span = t.startSpan(`${service}/${method}`, { kind, attributes: { "rpc.system": protocolOf(req), "rpc.service": service, "rpc.method": method } }, parent);
    const started = performance.now();
    let ended = false;
    const done = (err?: unknown) => {
      if (ended) return;
      ended = true;
      const code = codeName(err);
      span.setAttribute("rpc.connect_rpc.error_code", code);
      if (err !== undefined) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: ConnectError.from(err).rawMessage });
      }
      span.end();
      duration.record((performance.now() - started) / 1000, { "rpc.service": service, "rpc.method": method, code });
    };
    const ctx = trace.setSpan(parent, span);
    if (kind === SpanKind.CLIENT) propagation.inject(ctx, req.header, headerSetter);
    try {
      const res = await context.with(ctx, () => next(req));
      return finish(res, done);
    } catch (err) {
      done(err);
      throw err;
    }
  };
}

export const serverTelemetryInterceptor = (): Interceptor => instrument(SpanKind.SERVER);
export const clientTelemetryInterceptor = (): Interceptor => instrument(SpanKind.CLIENT);
