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
}

export interface ClusterProcess {
  name: ServiceName;
  address: string;
  child: ChildProcess;
}

const CHAT = fileURLToPath(new URL("./chat.js", import.meta.url));

/** The environment of one service process. */
export function serviceEnv(name: ServiceName, opts: ClusterOptions): Env {
  const service = findService(name);
  if (service === undefined) throw new Error(`unknown service ${name}`);
  const env = meshAddresses({ ...opts.env, BUS_DRIVER: "kafka", BUS_NAMESPACE: opts.busNamespace ?? opts.env["BUS_NAMESPACE"] ?? "" }, opts.portOffset ?? 0);
  return { ...env, ...service.clusterEnv, PORT: portOf(service, env), ...opts.overrides?.[name] };
}

/**
 * Spawns `chat <args>` (`args` may be one command) and waits until it prints that it is up (or
 * fails). Its environment is `baseEnv` (default: this process's) plus `env`; the log goes to
 * `<logDir>/<first arg>.log`.
 */
export async function spawnChat(args: string | string[], env: Env, logDir: string, baseEnv: Env = process.env): Promise<ChildProcess> {
  const argv = typeof args === "string" ? [args] : args;
  const command = argv[0] ?? "chat";
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(`${logDir}/${command}.log`, { flags: "a" });
  const child = spawn(process.execPath, [CHAT, ...argv], { env: { ...baseEnv, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stderr.pipe(log);
  let out = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      log.write(chunk);
      out += chunk.toString();
      if (out.includes(" up in ")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`chat ${command} exited with ${code} before it was up; see ${logDir}/${command}.log`)));
  });
  return child;
}

/** Starts one service process. */
export async function startService(name: ServiceName, opts: ClusterOptions): Promise<ClusterProcess> {
  const env = serviceEnv(name, opts);
  return { name, address: `127.0.0.1:${env["PORT"] ?? ""}`, child: await spawnChat(name, env, opts.logDir) };
}

/** The embedded mode as one process (`chat embedded`), its data under dataDir: one entry per service. */
export async function startEmbeddedProcess(opts: { env: Env; portOffset: number; logDir: string; dataDir: string }): Promise<ClusterProcess[]> {
  const env: Env = { ...meshAddresses(opts.env, opts.portOffset), DATA_DIR: opts.dataDir };
  const child = await spawnChat("embedded", env, opts.logDir);
  return SERVICES.map((s) => ({ name: s.name, address: env[s.addrSetting] ?? "", child }));
}

/** Starts every service in order. */
export async function startCluster(opts: ClusterOptions): Promise<ClusterProcess[]> {
  const started: ClusterProcess[] = [];
  try {
    for (const s of SERVICES) started.push(await startService(s.name, opts));
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
