// The life of one service process (or of one service inside the embedded process): wiring in
// main.ts builds its drivers, then `serve` starts the server and owns the shutdown order.
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import type { Env } from "./config.js";
import { ConfigError } from "./config.js";
import type { Logger } from "./log.js";
import { startServer, type RunningServer } from "./server.js";

/** A started service: where it listens and how to stop it. */
export interface RunningService {
  readonly name: string;
  /** gRPC host:port. */
  readonly address: string;
  /** Extra addresses worth printing (the edge's public URL). */
  readonly publicUrls?: Record<string, string>;
  readonly server: RunningServer;
  stop(): Promise<void>;
}

/** Every service's main.ts exports one of these. */
export type ServiceMain = (env: Env) => Promise<RunningService>;

/**
 * A service with a store also exports its migrations as one of these (`chat migrate`): applies
 * them with the configured driver, closes the connection and returns the ids it applied.
 */
export type StoreMigrate = (env: Env) => Promise<string[]>;

/** Something to close on shutdown (drivers, consumers), closed in reverse order of registration. */
export type Closer = () => Promise<void> | void;

/** The settings `serve` reads: commonSettings plus the service's PORT. */
export interface ServeConfig {
  HOST: string;
  PORT: number;
  SHUTDOWN_TIMEOUT_MS: number;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
}

export interface ServeOptions {
  name: string;
  config: ServeConfig;
  services: DescService[];
  routes: (router: ConnectRouter) => void;
  logger: Logger;
  closers: Closer[];
  /** Runs first on stop, while the server still serves (the edge drains its clients to other edges). */
  beforeClose?: () => Promise<void>;
  publicUrls?: Record<string, string>;
  onUpgrade?: Parameters<typeof startServer>[0]["onUpgrade"];
  readMaxBytes?: number;
}

export async function serve(opts: ServeOptions): Promise<RunningService> {
  const { config } = opts;
  const server = await startServer({
    ...opts,
    host: config.HOST,
    port: config.PORT,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  let stopping: Promise<void> | undefined;
  return {
    name: opts.name,
    address: server.address,
    server,
    ...(opts.publicUrls === undefined ? {} : { publicUrls: opts.publicUrls }),
    stop() {
      stopping ??= (async () => {
        if (opts.beforeClose !== undefined) {
          try {
            await opts.beforeClose();
          } catch (err) {
            opts.logger.warn({ err }, "error before closing");
          }
        }
        await server.close();
        for (const close of [...opts.closers].reverse()) {
          try {
            await close();
          } catch (err) {
            opts.logger.warn({ err }, "error while closing");
          }
        }
        opts.logger.info(`${opts.name} stopped`);
      })();
      return stopping;
    },
  };
}

/** For settings required only by some drivers: stops startup naming the setting and why. */
export function required<T>(value: T | undefined, name: string, because: string): T {
  if (value === undefined) throw new ConfigError([`${name}: required when ${because}, but not set`]);
  return value;
}
