#!/usr/bin/env node
// The one entry point: `chat <service>` runs one service (cluster mode: each its own process,
// drivers and peers from the environment); `chat embedded` runs the whole mesh in one process
// with embedded drivers (the default of `make run`).
import { ConfigError, type Env } from "../packages/runtime/src/config.js";
import { createLogger } from "../packages/runtime/src/log.js";
import { initTelemetry } from "../packages/runtime/src/telemetry/index.js";
import { startCluster, stopCluster } from "./cluster.js";
import type { RunningService } from "../packages/runtime/src/service.js";
import { migrateAll } from "./migrate.js";
import { findService, meshAddresses, portOf, PUBLIC_PORT, SERVICES, withDevSecret, type ServiceEntry } from "./services.js";
import { mintToken } from "./token.js";

const USAGE = `usage: chat <command>
  chat embedded      the whole mesh in one process, embedded drivers (make run)
  chat cluster       every service its own process, production drivers (make cluster)
  chat token <user>  a development token for <user> (JWT_HS256_SECRET, or the local default)
  chat migrate       every store's migrations with the production drivers, then exit (PG_URL, CASSANDRA_*)
  chat <service>     one service: ${SERVICES.map((s) => s.name).join(", ")}`;

const logger = createLogger("chat");

/** The embedded mesh: every service on its default port, peers on loopback, embedded drivers. */
async function startEmbedded(env: Env): Promise<RunningService[]> {
  // One edge: draining on shutdown has nowhere to send its clients.
  const shared = meshAddresses(withDevSecret({ EDGE_DRAIN_MS: "0", ...env, STORE_DRIVER: "embedded", BUS_DRIVER: "memory" }));
  const running: RunningService[] = [];
  for (const s of SERVICES) {
    try {
      running.push(await s.main({ ...shared, PORT: portOf(s, shared) }));
    } catch (err) {
      logger.error(`${s.name} failed to start`);
      for (const started of running.reverse()) await started.stop();
      throw err;
    }
  }
  return running;
}

function printAddresses(what: string, running: RunningService[], startedMs: number): void {
  const lines = [`chat ${what} up in ${Date.now() - startedMs} ms`];
  for (const s of running) {
    for (const [kind, url] of Object.entries(s.publicUrls ?? {})) lines.push(`  public ${kind.padEnd(10)} ${url}`);
  }
  for (const s of running) lines.push(`  ${s.name.padEnd(17)} grpc://${s.address}`);
  lines.push(`  try: grpcurl -plaintext ${running[0]?.address ?? ""} list`);
  if (running.some((s) => s.publicUrls !== undefined)) lines.push("  a client token: make token USER=alice");
  process.stdout.write(lines.join("\n") + "\n");
}

async function run(argv: string[]): Promise<void> {
  const command = argv[0];
  const startedMs = Date.now();
  // One telemetry setup per process, named after what runs in it ("chat" for the embedded mesh).
  const otlpEndpoint = process.env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  initTelemetry({ serviceName: command === "embedded" ? "chat" : (command ?? "chat"), ...(otlpEndpoint ? { otlpEndpoint } : {}) });
  if (command === "cluster") return runCluster(startedMs);
  if (command === "token") {
    process.stdout.write(`${await mintToken(withDevSecret(process.env), argv[1] ?? "")}\n`);
    return;
  }
  if (command === "migrate") {
    const applied = await migrateAll(process.env);
    process.stdout.write(`chat migrate done in ${Date.now() - startedMs} ms: ${Object.entries(applied).map(([s, ids]) => `${s} +${ids.length}`).join(", ")}\n`);
    process.exit(0);
  }
  let running: RunningService[];
  if (command === "embedded") {
    running = await startEmbedded(process.env);
  } else if (command !== undefined && findService(command) !== undefined) {
    running = [await (findService(command) as ServiceEntry).main(process.env)];
  } else {
    process.stderr.write(`${USAGE}\n`);
    process.exit(command === undefined || command === "help" || command === "--help" ? 0 : 2);
  }
  printAddresses(command, running, startedMs);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info(`${signal}: stopping`);
    // Reverse start order: the edge stops taking clients first, the stores close last.
    void (async () => {
      for (const s of [...running].reverse()) await s.stop();
      process.exit(0);
    })();
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

/** `chat cluster`: a supervisor of one process per service; stops them all on a signal. */
async function runCluster(startedMs: number): Promise<void> {
  const processes = await startCluster({ env: withDevSecret(process.env), logDir: "var/cluster", edges: Number(process.env["CLUSTER_EDGES"] ?? "1") || 1 });
  const lines = [`chat cluster up in ${Date.now() - startedMs} ms (logs in var/cluster/)`];
  for (const p of processes) lines.push(`  ${(p.instance === 0 ? p.name : `${p.name}-${p.instance}`).padEnd(17)} grpc://${p.address}  pid ${p.child.pid}`);
  lines.push(`  public connect     http://127.0.0.1:${process.env["PUBLIC_PORT"] ?? PUBLIC_PORT}`);
  process.stdout.write(lines.join("\n") + "\n");
  const stop = () => void stopCluster(processes).then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  for (const p of processes) {
    p.child.once("exit", (code, signal) => {
      logger.error(`${p.name} exited (${signal ?? code}); see var/cluster/${p.name}.log`);
    });
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`chat: ${err.message}\n`);
    process.exit(2);
  }
  logger.fatal({ err }, "startup failed");
  process.exit(1);
});
