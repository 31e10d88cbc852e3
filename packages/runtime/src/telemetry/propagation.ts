// Trace context across Kafka: injected into record headers by producers, extracted by consumers,
// so one trace follows a message from the sender's frame to each recipient's frame.
import { context, propagation, SpanKind, trace, type Attributes, type Context, type Link, type Span } from "@opentelemetry/api";
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

/** A CONSUMER span continuing the trace of one record's headers, and the context it is active in (the caller ends it). */
export function startConsumerSpan(name: string, headers: Record<string, string>, attributes: Attributes = {}): { span: Span; ctx: Context } {
  const parent = extractTraceContext(headers);
  const span = tracer("chat.bus").startSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/**
 * Runs fn in a span that is a child of the first context and links to the others: work done once
 * for several messages (one batched RPC) stays in the first message's trace and is reachable from
 * the others'.
 */
export async function withSpanFor<T>(name: string, contexts: Context[], fn: () => Promise<T>, attributes: Attributes = {}): Promise<T> {
  const [first, ...rest] = contexts;
  const parent = first ?? context.active();
  const links: Link[] = [];
  const seen = new Set<string>();
  const own = trace.getSpanContext(parent);
  if (own !== undefined) seen.add(own.spanId);
  for (const c of rest) {
    const sc = trace.getSpanContext(c);
    if (sc === undefined || seen.has(sc.spanId)) continue;
    seen.add(sc.spanId);
    links.push({ context: sc });
  }
  const span = tracer("chat.bus").startSpan(name, { attributes, links }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), fn);
  } finally {
    span.end();
  }
}
