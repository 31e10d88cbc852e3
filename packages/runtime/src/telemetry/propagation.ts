// Trace context across Kafka: injected into record headers by producers, extracted by consumers,
// so one trace follows a message from the sender's frame to each recipient's frame.
import { context, propagation, SpanKind, trace, type Context } from "@opentelemetry/api";
import { tracer } from "./index.js";

/** W3C trace headers of the active (or given) context, to put on a record. */
export function injectTraceHeaders(ctx: Context = context.active()): Record<string, string> {
  const headers: Record<string, string> = {};
  propagation.inject(ctx, headers);
  return headers;
}

/** The context carried by a record's headers. */
export function extractTraceContext(headers: Record<string, string>): Context {
  return propagation.extract(context.active(), headers);
}

/** Runs fn inside a CONSUMER span that continues the trace of the record's headers. */
export async function withConsumerSpan<T>(name: string, headers: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const span = tracer("chat.bus").startSpan(name, { kind: SpanKind.CONSUMER }, extractTraceContext(headers));
  try {
    return await context.with(trace.setSpan(extractTraceContext(headers), span), fn);
  } finally {
    span.end();
  }
}
