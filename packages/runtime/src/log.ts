// Structured logs (pino, JSON on stdout). Every line written inside a span of a trace carries its
// trace_id and span_id, so logs and traces join up.
import { isSpanContextValid, trace } from "@opentelemetry/api";
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/** The fields a log line written now carries: the active span's trace and span ids, if it has valid ones. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const ctx = trace.getActiveSpan()?.spanContext();
  // With tracing off (no exporter), a span started without an incoming trace context has none.
  if (ctx === undefined || !isSpanContextValid(ctx)) return {};
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

const root: Logger = pino({
  level: process.env["LOG_LEVEL"] ?? "info",
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
  mixin: traceFields,
});

/** A child logger for one component, e.g. createLogger("message-store"). */
export function createLogger(component: string): Logger {
  return root.child({ component });
}
