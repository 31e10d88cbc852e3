// Structured logs (pino, JSON on stdout). Every line written inside an active span carries its
// trace_id and span_id, so logs and traces join up.
import { trace } from "@opentelemetry/api";
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

const root: Logger = pino({
  level: process.env["LOG_LEVEL"] ?? "info",
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
  mixin() {
    const span = trace.getActiveSpan();
    if (span === undefined) return {};
    const ctx = span.spanContext();
    return { trace_id: ctx.traceId, span_id: ctx.spanId };
  },
});

/** A child logger for one component, e.g. createLogger("message-store"). */
export function createLogger(component: string): Logger {
  return root.child({ component });
}
