// Tracing with no exporter configured (OTEL_EXPORTER_OTLP_ENDPOINT unset): no spans and no trace
// ids are made up, while a trace context that comes in still propagates and names the log lines
// written in it. Its own file: telemetry is set up once per process.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { context, trace } from "@opentelemetry/api";
import { traceFields } from "../src/log.js";
import { initTelemetry, tracer } from "../src/telemetry/index.js";
import { extractTraceContext, injectTraceHeaders } from "../src/telemetry/propagation.js";

const telemetry = initTelemetry({ serviceName: "telemetry-off-test" });
const incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

describe("telemetry without an exporter", () => {
  after(() => telemetry.shutdown());

  it("makes up no trace for work that came with none", () => {
    const span = tracer("test").startSpan("root");
    assert.equal(span.isRecording(), false);
    context.with(trace.setSpan(context.active(), span), () => {
      assert.deepEqual(injectTraceHeaders(), {}, "no traceparent to pass on");
      assert.deepEqual(traceFields(), {}, "log lines carry no made-up ids");
    });
    span.end();
  });

  it("passes an incoming trace context on, and logs carry its trace id", async () => {
    const parent = extractTraceContext({ traceparent: incoming });
    const span = tracer("test").startSpan("continued", {}, parent);
    assert.equal(span.isRecording(), false);
    await context.with(trace.setSpan(parent, span), async () => {
      await new Promise((r) => setTimeout(r, 1)); // across an await, as a handler's work is
      assert.match(injectTraceHeaders()["traceparent"] ?? "", /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
      assert.equal(traceFields().trace_id, "0af7651916cd43dd8448eb211c80319c");
    });
    span.end();
  });
});
