// The cluster mode on one machine: every service its own OS process (`chat <service>`) with the
// production drivers, pointed at the real infrastructure. Used by `chat cluster` (make cluster)
// and by the mesh tests, so both run the mesh the same way.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Env } from "../packages/runtime/src/config.js";
import { findService, meshAddresses, portOf, SERVICES, type ServiceName } from "./services.js";

export type { ServiceName };

export interface ClusterOptions {
  /** Infrastructure settings (PG_URL, REDIS_URL, KAFKA_BROKERS, CASSANDRA_*), from infra/env.sh. */
  env: Env;
  /** Added to every default port (tests use an offset so they never collide with `make run`). */
  portOffset?: number;
  /** Where each service's log goes (one file per service). */
  logDir: string;
  /** Topic and consumer-group prefix of this mesh on the shared Kafka (default: none). */
  busNamespace?: string;
  /** Extra settings for one service. */
  overrides?: Partial<Record<ServiceName, Env>>;
  /** How many edge processes (default 1); edge i > 0 has ports EXTRA_EDGE_PORT + i and PUBLIC_PORT + i (plus the offset). */
  edges?: number;
}

export interface ClusterProcess {
  name: ServiceName;
  address: string;
  child: ChildProcess;
  /** Which edge (0 for every other service). */
  instance: number;
}

/** The internal port of edge i > 0 is this plus i (plus the offset): clear of the services' 9100-9106. */
export const EXTRA_EDGE_PORT = 9120;
/** The port of message-store replica i > 0 is this plus i (plus the offset). */
export const EXTRA_STORE_PORT = 9130;

const CHAT = fileURLToPath(new URL("./chat.js", import.meta.url));

/**
 * The Node.js options every service process starts with unless NODE_OPTIONS says otherwise (the
 * container image sets the same). A 16 MB young generation instead of V8's default for a host
 * with this much memory (64 MB semi-spaces): a scavenge then pauses a busy service for about half
 * as long. In six interleaved pairs of group runs (500 members, 101 msg/s) p99 to the last
 * recipient was 169-205 ms with it and 177-416 ms without. One V8 helper thread instead of four
 * (`--v8-pool-size`, for the collector's parallel and concurrent work and background compiles): a
 * service is one event loop, and on a host of few cores four helpers per process only add threads
 * that wake to contend for them. Twelve interleaved pairs at 1,000 msg/s (README, Benchmark): p99
 * 76-144 ms (median 92) with it, 65-764 ms (median 143) without, the same CPU per message.
 */
export const SERVICE_NODE_OPTIONS = "--max-semi-space-size=16 --v8-pool-size=1";

/**
 * The environment of one service process (`instance` > 0: one more edge, with ports of its own, or
 * one more message-store replica, with its own port and seq-lease name).
 */
export function serviceEnv(name: ServiceName, opts: ClusterOptions, instance = 0): Env {
  const service = findService(name);
  if (service === undefined) throw new Error(`unknown service ${name}`);
  const offset = opts.portOffset ?? 0;
  const env = meshAddresses({ ...opts.env, BUS_DRIVER: "kafka", BUS_NAMESPACE: opts.busNamespace ?? opts.env["BUS_NAMESPACE"] ?? "" }, offset);
  const own = { ...env, ...service.clusterEnv, PORT: portOf(service, env), ...opts.overrides?.[name] };
  if (instance === 0) return own;
  if (name === "message-store") return { ...own, PORT: String(EXTRA_STORE_PORT + offset + instance), INSTANCE_NAME: `message-store-${instance}` };
  if (name !== "edge") throw new Error(`only the edge and the message store run several instances here, not ${name}`);
  return { ...own, PORT: String(EXTRA_EDGE_PORT + offset + instance), PUBLIC_PORT: String(Number(env["PUBLIC_PORT"]) + instance) };
}

/**
 * Spawns `chat <args>` (`args` may be one command) and waits until it prints that it is up (or
 * fails). Its environment is `baseEnv` (default: this process's) plus `env`; the log goes to
 * `<logDir>/<first arg>.log`.
 */
export async function spawnChat(args: string | string[], env: Env, logDir: string, baseEnv: Env = process.env, logName?: string): Promise<ChildProcess> {
  const argv = typeof args === "string" ? [args] : args;
  const command = argv[0] ?? "chat";
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(`${logDir}/${logName ?? command}.log`, { flags: "a" });
  const child = spawn(process.execPath, [CHAT, ...argv], { env: { NODE_OPTIONS: SERVICE_NODE_OPTIONS, ...baseEnv, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stderr.pipe(log);
  let out = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      log.write(chunk);
      out += chunk.toString();
      if (out.includes(" up in ")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`chat ${command} exited with ${code} before it was up; see ${logDir}/${logName ?? command}.log`)));
  });
  return child;
}

/** Starts one service process (`instance` > 0: one more edge or message store; its log is <name>-<i>.log). */
export async function startService(name: ServiceName, opts: ClusterOptions, instance = 0): Promise<ClusterProcess> {
  const env = serviceEnv(name, opts, instance);
  const child = await spawnChat(name, env, opts.logDir, process.env, instance === 0 ? name : `${name}-${instance}`);
  return { name, address: `127.0.0.1:${env["PORT"] ?? ""}`, child, instance };
}

/** The embedded mode as one process (`chat embedded`), its data under dataDir: one entry per service. */
export async function startEmbeddedProcess(opts: { env: Env; portOffset: number; logDir: string; dataDir: string }): Promise<ClusterProcess[]> {
  const env: Env = { ...meshAddresses(opts.env, opts.portOffset), DATA_DIR: opts.dataDir };
  const child = await spawnChat("embedded", env, opts.logDir);
  return SERVICES.map((s) => ({ name: s.name, address: env[s.addrSetting] ?? "", child, instance: 0 }));
}

/** Starts every service in order. */
export async function startCluster(opts: ClusterOptions): Promise<ClusterProcess[]> {
  const started: ClusterProcess[] = [];
  try {
    for (const s of SERVICES) started.push(await startService(s.name, opts));
    for (let i = 1; i < (opts.edges ?? 1); i++) started.push(await startService("edge", opts, i));
  } catch (err) {
    await stopCluster(started);
    throw err;
  }
  return started;
}

/** SIGTERM to every process (reverse order), SIGKILL after the bound. */
export async function stopCluster(processes: ClusterProcess[], boundMs = 15_000): Promise<void> {
  for (const child of new Set([...processes].reverse().map((p) => p.child))) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), boundMs);
    await exited;
    clearTimeout(timer);
  }
}
