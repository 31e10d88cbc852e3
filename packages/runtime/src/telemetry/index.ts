// OpenTelemetry for the whole process: W3C trace context, spans exported over OTLP/HTTP when an
// endpoint is configured (or kept in memory for tests; with neither, tracing is off), and metrics
// served on /metrics in the Prometheus format by the service's own port, among them the process's
// memory and event-loop delay (runtime.ts). Initialised once per process.
import { context, metrics, propagation, trace, type Meter, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AggregationTemporality, InstrumentType, MeterProvider } from "@opentelemetry/sdk-metrics";
import {
  AlwaysOnSampler,
  BatchSpanProcessor,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace";
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { registerRuntimeMetrics } from "./runtime.js";

export interface TelemetryOptions {
  serviceName: string;
  /** OTLP/HTTP base URL; spans go to <endpoint>/v1/traces. */
  otlpEndpoint?: string;
  /** Keep finished spans in memory (tests). */
  memoryExporter?: boolean;
}

export interface Telemetry {
  readonly serviceName: string;
  /** Serves the Prometheus text of every metric of this process. */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void;
  /** Finished spans (memoryExporter only), after flushing. */
  finishedSpans(): Promise<ReadableSpan[]>;
  shutdown(): Promise<void>;
}

/**
 * The Prometheus exporter, except that an observable gauge serves only what its callbacks observed
 * in this collection. Under the SDK's cumulative default an attribute set once observed is served
 * at its last value for good (open-telemetry/opentelemetry-js#4096): a Kafka partition this member
 * no longer holds would keep its old lag. Delta temporality changes nothing else for a gauge (it
 * has no running sum); counters and histograms stay cumulative, as Prometheus wants them.
 */
class PrometheusCurrentGauges extends PrometheusExporter {
  override selectAggregationTemporality(type: InstrumentType): AggregationTemporality {
    return type === InstrumentType.OBSERVABLE_GAUGE ? AggregationTemporality.DELTA : super.selectAggregationTemporality(type);
  }
}

let current: Telemetry | undefined;
/** Instruments waiting for the meter provider (see whenMetricsReady). */
const pending: (() => void)[] = [];

/**
 * Runs `register` once the process's meter provider exists: now if initTelemetry has run, else
 * when it runs. For instruments created by code that may run before it (a bus opened before the
 * server starts): an instrument created earlier would stay on the API's no-op meter for good.
 */
export function whenMetricsReady(register: () => void): void {
  if (current !== undefined) register();
  else pending.push(register);
}

export function initTelemetry(opts: TelemetryOptions): Telemetry {
  if (current !== undefined) return current;
  const resource = resourceFromAttributes({ "service.name": opts.serviceName, "service.instance.id": randomUUID() });
  const processors: SpanProcessor[] = [];
  if (opts.otlpEndpoint !== undefined) {
    processors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${opts.otlpEndpoint.replace(/\/$/, "")}/v1/traces` }) }));
  }
  const memory = opts.memoryExporter === true ? new InMemorySpanExporter() : undefined;
  if (memory !== undefined) processors.push(new SimpleSpanProcessor({ exporter: memory }));
  // With nowhere to send spans, no tracer provider: the API's no-op tracer makes no spans and no
  // trace ids of its own, and a trace context that comes in (a client's traceparent, a record's
  // headers) still propagates, so logs carry its ids. The SDK with an always-off sampler made up a
  // trace id for every send and carried it through every hop: measured at 1,000 msg/s, 0.14-1.04
  // ms of the median latency (README, Benchmark). With an exporter, the caller's sampling
  // decision is kept.
  const tracerProvider = processors.length === 0 ? undefined : new TracerProvider({ resource, spanProcessors: processors, sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }) });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  if (tracerProvider !== undefined) trace.setGlobalTracerProvider(tracerProvider);

  const prometheus = new PrometheusCurrentGauges({ preventServerStart: true });
  const meterProvider = new MeterProvider({ resource, readers: [prometheus] });
  metrics.setGlobalMeterProvider(meterProvider);
  const stopRuntimeMetrics = registerRuntimeMetrics(meterProvider.getMeter("chat.runtime"));

  current = {
    serviceName: opts.serviceName,
    metricsHandler: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    async finishedSpans() {
      await tracerProvider?.forceFlush();
      return memory?.getFinishedSpans() ?? [];
    },
    async shutdown() {
      stopRuntimeMetrics();
      await Promise.all([tracerProvider?.shutdown(), meterProvider.shutdown()]);
    },
  };
  for (const register of pending.splice(0)) register();
  return current;
}

export const tracer = (name: string): Tracer => trace.getTracer(name);
export const meter = (name: string): Meter => metrics.getMeter(name);
