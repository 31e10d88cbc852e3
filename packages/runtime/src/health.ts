// grpc.health.v1: Check, Watch and List over one status table. The empty service name is the
// server as a whole. Statuses go NOT_SERVING when the server starts draining.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { EventEmitter, on } from "node:events";
import type {
  Health} from "../../../gen/grpc/health/v1/health_pb.js";
import {
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
  type HealthCheckResponse,
} from "../../../gen/grpc/health/v1/health_pb.js";
import { notFound } from "./errors.js";

export { Status as ServingStatus };

export class HealthRegistry {
  private readonly statuses = new Map<string, Status>();
  private readonly changes = new EventEmitter();

  constructor(serviceNames: string[]) {
    this.changes.setMaxListeners(0);
    this.statuses.set("", Status.SERVING);
    for (const name of serviceNames) this.statuses.set(name, Status.SERVING);
  }

  set(service: string, status: Status): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    this.changes.emit("change", service);
  }

  /** Marks every service NOT_SERVING (shutdown) and ends the Watch streams. */
  shutdown(): void {
    for (const name of this.statuses.keys()) this.set(name, Status.NOT_SERVING);
    this.changes.emit("close");
  }

  get(service: string): Status | undefined {
    return this.statuses.get(service);
  }

  private response(service: string): HealthCheckResponse {
    return create(HealthCheckResponseSchema, { status: this.statuses.get(service) ?? Status.SERVICE_UNKNOWN });
  }

  impl(): ServiceImpl<typeof Health> {
    return {
      check: (req) => {
        if (!this.statuses.has(req.service)) throw notFound(`unknown service "${req.service}"`);
        return this.response(req.service);
      },
      watch: (req, ctx) => this.watch(req.service, ctx.signal),
      list: () => ({
        statuses: Object.fromEntries([...this.statuses.keys()].map((name) => [name, this.response(name)])),
      }),
    };
  }

  private async *watch(service: string, signal: AbortSignal): AsyncGenerator<HealthCheckResponse> {
    let last = this.statuses.get(service) ?? Status.SERVICE_UNKNOWN;
    yield this.response(service);
    const closed = new AbortController();
    const onClose = () => closed.abort();
    this.changes.once("close", onClose);
    signal.addEventListener("abort", onClose, { once: true });
    try {
      for await (const [changed] of on(this.changes, "change", { signal: closed.signal }) as AsyncIterable<[string]>) {
        if (changed !== service) continue;
        const now = this.statuses.get(service) ?? Status.SERVICE_UNKNOWN;
        if (now === last) continue;
        last = now;
        yield this.response(service);
      }
    } catch (err) {
      if (!closed.signal.aborted) throw err;
      if (last !== Status.NOT_SERVING && this.statuses.get(service) === Status.NOT_SERVING) {
        yield this.response(service);
      }
    } finally {
      this.changes.off("close", onClose);
    }
  }
}
