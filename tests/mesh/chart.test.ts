// The Helm chart boots the mesh: the chart is rendered (helm template, helm/ci/minimal.yaml with
// the local servers as its external infrastructure), each rendered Deployment's container runs as
// an OS process with exactly the args and environment Kubernetes would give it (ConfigMaps,
// secret references and the downward API resolved here, peers' Service names mapped to loopback
// ports), the migration Job's command runs first, and a message goes from one user to another
// through the edge. Also: NetworkPolicies admit exactly the callers the rendered wiring has.
import assert from "node:assert/strict";
import { execFile, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ConnectionService } from "../../gen/chat/connection/v1/connection_pb.js";
import { spawnChat, stopCluster, type ClusterProcess } from "../../cmd/cluster.js";
import { SERVICES } from "../../cmd/services.js";
import { mintToken } from "../../cmd/token.js";
import type { Env } from "../../packages/runtime/src/config.js";
import { ChatSocket } from "../../packages/client/src/websocket.js";
import { infraEnv } from "../support/infra.js";

const run = promisify(execFile);
const HELM = "var/tools/bin/helm";
const PYTHON = "var/tools/venv/bin/python";
const CHAT = fileURLToPath(new URL("../../cmd/chat.js", import.meta.url));
const OFFSET = 16_000;
const RELEASE = "chat";
const LOG_DIR = "var/test-logs/chart";

// The secrets the chart references but never creates, as an operator would create them.
const SECRETS: Record<string, Record<string, string>> = {
  "chat-jwt": { "jwt-hs256-secret": randomBytes(24).toString("hex") },
  "chat-postgres": { url: "" }, // PG_URL of the local server, filled in before rendering
};

interface K8sObject {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: { name: string; key: string };
    secretKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}
interface Container {
  name: string;
  args?: string[];
  command?: string[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { grpc?: { port: number } };
  readinessProbe?: { grpc?: { port: number } };
  securityContext?: { runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[]; securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } } };
}
interface Peer {
  podSelector?: { matchLabels?: Record<string, string> };
}

/** helm template, parsed (YAML to JSON through the chart tools' PyYAML). */
async function render(setValues: Record<string, string>): Promise<K8sObject[]> {
  if (!existsSync(HELM)) assert.fail(`helm is missing (${HELM}): run scripts/tools.sh (make test installs it)`);
  if (!existsSync(PYTHON)) assert.fail(`the chart tools' Python is missing (${PYTHON}): run scripts/tools.sh (make test installs it)`);
  const sets = Object.entries(setValues).flatMap(([k, v]) => ["--set-string", `${k}=${v}`]);
  const { stdout: yaml } = await run(HELM, ["template", RELEASE, "helm/chat", "--kube-version", "1.37.0", "-f", "helm/ci/minimal.yaml", ...sets], { maxBuffer: 16 << 20 });
  const child = execFile(PYTHON, ["-c", "import json,sys,yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)"], { maxBuffer: 16 << 20 });
  const out = new Promise<string>((resolve, reject) => {
    let json = "";
    child.stdout?.on("data", (c: Buffer) => (json += c.toString()));
    child.once("exit", (code) => (code === 0 ? resolve(json) : reject(new Error(`YAML to JSON failed (${code})`))));
  });
  child.stdin?.end(yaml);
  return JSON.parse(await out) as K8sObject[];
}

const componentOf = (o: { metadata: { labels?: Record<string, string> } }) => o.metadata.labels?.["app.kubernetes.io/component"] ?? "";

/**
 * A container's environment as the kubelet builds it: envFrom first, then env in order, with
 * $(VAR) references to variables defined before; the pod's IP is loopback here.
 */
function containerEnv(c: Container, objects: K8sObject[], podName: string): Env {
  const configMap = (name: string) => objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === name)?.data ?? assert.fail(`ConfigMap ${name} is not rendered`);
  const secret = (name: string) => SECRETS[name] ?? assert.fail(`secret ${name} is referenced; the test does not know it`);
  const env: Env = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, configMap(from.configMapRef.name));
    if (from.secretRef) Object.assign(env, secret(from.secretRef.name));
  }
  for (const v of c.env ?? []) {
    const ref = v.valueFrom;
    if (v.value !== undefined) env[v.name] = v.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m);
    else if (ref?.configMapKeyRef) env[v.name] = configMap(ref.configMapKeyRef.name)[ref.configMapKeyRef.key] ?? assert.fail(`${v.name}: no key ${ref.configMapKeyRef.key}`);
    else if (ref?.secretKeyRef) env[v.name] = secret(ref.secretKeyRef.name)[ref.secretKeyRef.key] ?? assert.fail(`${v.name}: no key ${ref.secretKeyRef.key} in secret ${ref.secretKeyRef.name}`);
    else if (ref?.fieldRef?.fieldPath === "status.podIP") env[v.name] = "127.0.0.1";
    else if (ref?.fieldRef?.fieldPath === "metadata.name") env[v.name] = podName;
    else assert.fail(`${v.name}: unsupported source ${JSON.stringify(v)}`);
  }
  return env;
}

describe("the Helm chart boots the mesh (helm template -> one process per Deployment, real infrastructure)", () => {
  let objects: K8sObject[] = [];
  const processes: ClusterProcess[] = [];
  const sockets: ChatSocket[] = [];
  const deployments = () => objects.filter((o) => o.kind === "Deployment");
  const podOf = (d: K8sObject) => (d.spec?.["template"] as PodTemplate | undefined) ?? assert.fail(`${d.metadata.name}: no pod template`);
  const serviceByName = (name: string) => objects.find((o) => o.kind === "Service" && o.metadata.name === name);

  /** Kubernetes Service name:port -> this machine's loopback port (the default port + OFFSET). */
  function toLoopback(setting: string, value: string): string {
    const [host = "", port = ""] = value.split(":");
    const svc = host === "127.0.0.1" ? undefined : (serviceByName(host) ?? assert.fail(`${setting}=${value}: no Service ${host} in the chart`));
    if (svc !== undefined) {
      const ports = (svc.spec?.["ports"] as { port: number }[]).map((p) => String(p.port));
      assert.ok(ports.includes(port), `${setting}=${value}: Service ${host} has no port ${port}`);
    }
    return `127.0.0.1:${Number(port) + OFFSET}`;
  }

  /** What a Deployment's container gets, moved to this machine's loopback ports. */
  function localEnv(d: K8sObject): { args: string[]; env: Env } {
    const container = podOf(d).spec.containers[0] ?? assert.fail("no container");
    assert.equal(container.command, undefined, "the image's entry point runs (node dist/cmd/chat.js)");
    const env = containerEnv(container, objects, `${d.metadata.name}-0`);
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) continue;
      if (k.endsWith("_SERVICE_ADDR") || k === "ADVERTISE_ADDR") env[k] = toLoopback(k, v);
      if (k === "PORT" || k === "PUBLIC_PORT") env[k] = String(Number(v) + OFFSET);
      if (k === "HOST" || k === "PUBLIC_HOST") env[k] = "127.0.0.1"; // 0.0.0.0 in a pod; loopback on a shared machine
    }
    return { args: container.args ?? [], env };
  }

  before(async () => {
    const infra = infraEnv();
    SECRETS["chat-postgres"] = { url: infra["PG_URL"] ?? "" };
    objects = await render({
      "kafka.brokers": `{${infra["KAFKA_BROKERS"] ?? ""}}`,
      "kafka.namespace": "chart.",
      "cassandra.contactPoints": `{${infra["CASSANDRA_CONTACT_POINTS"] ?? ""}}`,
      "cassandra.localDc": infra["CASSANDRA_LOCAL_DC"] ?? "",
      "cassandra.keyspace": "chat_chart",
      "redis.url": infra["REDIS_URL"] ?? "",
      // PostgreSQL's URL through an existing secret, the production way.
      "postgres.existingSecret": "chat-postgres",
      "common.logLevel": "warn",
    });
  });

  after(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await stopCluster(processes);
  });

  it("renders one Deployment per service, each with gRPC health probes and a locked-down container", () => {
    assert.deepEqual(deployments().map(componentOf).sort(), SERVICES.map((s) => s.name).sort());
    for (const d of deployments()) {
      const pod = podOf(d);
      const c = pod.spec.containers[0] ?? assert.fail("no container");
      const grpcPort = c.ports?.find((p) => p.name === "grpc")?.containerPort;
      assert.equal(grpcPort, SERVICES.find((s) => s.name === componentOf(d))?.port, `${d.metadata.name}: the service's port`);
      assert.equal(c.livenessProbe?.grpc?.port, grpcPort, `${d.metadata.name}: grpc liveness probe`);
      assert.equal(c.readinessProbe?.grpc?.port, grpcPort, `${d.metadata.name}: grpc readiness probe`);
      assert.equal(pod.spec.securityContext?.runAsNonRoot, true);
      assert.equal(pod.spec.securityContext?.seccompProfile?.type, "RuntimeDefault");
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"]);
      assert.match(pod.metadata.annotations?.["checksum/config"] ?? "", /^[0-9a-f]{64}$/, "config checksum on the pod");
    }
    // Routing dials each edge pod at the address it registers: its pod IP, not the bind address.
    const edge = podOf(deployments().find((d) => componentOf(d) === "edge") ?? assert.fail()).spec.containers[0]?.env ?? [];
    assert.equal(edge.find((v) => v.name === "POD_IP")?.valueFrom?.fieldRef?.fieldPath, "status.podIP");
    assert.equal(edge.find((v) => v.name === "ADVERTISE_ADDR")?.value, "$(POD_IP):9100");
    assert.equal(edge.find((v) => v.name === "EDGE_ID")?.valueFrom?.fieldRef?.fieldPath, "metadata.name");
    // Message-store replicas hold seq leases under their pod's name and pass appends on to each other at the pod IP.
    const store = podOf(deployments().find((d) => componentOf(d) === "message-store") ?? assert.fail()).spec.containers[0]?.env ?? [];
    assert.equal(store.find((v) => v.name === "ADVERTISE_ADDR")?.value, "$(POD_IP):9102");
    assert.equal(store.find((v) => v.name === "INSTANCE_NAME")?.valueFrom?.fieldRef?.fieldPath, "metadata.name");
  });

  it("each NetworkPolicy admits exactly the services that call it (from the rendered wiring)", () => {
    const nameToComponent = new Map(objects.filter((o) => o.kind === "Service").map((s) => [s.metadata.name, componentOf(s)]));
    const callers = new Map<string, Set<string>>(SERVICES.map((s) => [s.name, new Set<string>()]));
    for (const d of deployments()) {
      const env = containerEnv(podOf(d).spec.containers[0] ?? assert.fail(), objects, "x");
      for (const [k, v] of Object.entries(env)) {
        if (!k.endsWith("_SERVICE_ADDR") || v === undefined) continue;
        callers.get(nameToComponent.get(v.split(":")[0] ?? "") ?? assert.fail(`${k}=${v}`))?.add(componentOf(d));
      }
    }
    // Routing and presence reach each edge at the address the edge registers (ADVERTISE_ADDR), not by setting.
    callers.get("edge")?.add("routing").add("presence");
    // Message-store replicas reach each other at the address in a seq lease (ADVERTISE_ADDR).
    callers.get("message-store")?.add("message-store");
    for (const np of objects.filter((o) => o.kind === "NetworkPolicy")) {
      const service = componentOf(np);
      const port = SERVICES.find((s) => s.name === service)?.port;
      const rules = (np.spec?.["ingress"] as { ports: { port: number }[]; from?: Peer[] }[]).filter((r) => r.ports.some((p) => p.port === port));
      const admitted = rules.flatMap((r) => (r.from ?? [{ podSelector: { matchLabels: { "app.kubernetes.io/component": "ANY" } } }]).map((f) => f.podSelector?.matchLabels?.["app.kubernetes.io/component"] ?? "ANY"));
      assert.deepEqual(admitted.sort(), [...(callers.get(service) ?? [])].sort(), `${service} admits its callers only`);
    }
  });

  it("the migration Job's command migrates the stores, then the Deployments start and a message goes from alice to bob through the edge", async () => {
    const job = objects.find((o) => o.kind === "Job") ?? assert.fail("no migration Job rendered");
    const jobContainer = (job.spec?.["template"] as PodTemplate).spec.containers[0] ?? assert.fail();
    const base: Env = { PATH: process.env["PATH"] ?? "" }; // only what the chart gives a container
    const migrated = await run(process.execPath, [CHAT, ...(jobContainer.args ?? [])], { env: { ...base, ...containerEnv(jobContainer, objects, "migrate-0") }, timeout: 120_000 });
    assert.match(migrated.stdout, /chat migrate done in \d+ ms: group \+\d+, message-store \+\d+, push \+\d+/);

    for (const s of SERVICES) {
      const d = deployments().find((x) => componentOf(x) === s.name) ?? assert.fail(`no Deployment for ${s.name}`);
      const { args, env } = localEnv(d);
      let child: ChildProcess;
      try {
        child = await spawnChat(args, env, LOG_DIR, base);
      } catch (err) {
        throw new Error(`${d.metadata.name} (chat ${args.join(" ")}) did not start from the chart's settings`, { cause: err });
      }
      processes.push({ name: s.name, address: `127.0.0.1:${env["PORT"] ?? ""}`, child, instance: 0 });
    }

    const edge = localEnv(deployments().find((d) => componentOf(d) === "edge") ?? assert.fail()).env;
    // The edge registered itself as its pod (EDGE_ID) at its advertised address.
    const { edges } = await createClient(ConnectionService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${9101 + OFFSET}` })).listEdges({});
    // (Other suites' edges share this Redis: look for this one by its id.)
    assert.equal(edges.find((e) => e.edgeId === `${RELEASE}-edge-0`)?.grpcAddress, edge["ADVERTISE_ADDR"]);
    const secret = SECRETS["chat-jwt"]?.["jwt-hs256-secret"] ?? "";
    const run_ = randomBytes(4).toString("hex");
    const [alice, bob] = [`alice-${run_}`, `bob-${run_}`];
    const open = async (user: string) => {
      const s = await ChatSocket.connect({ url: `ws://127.0.0.1:${edge["PUBLIC_PORT"] ?? ""}/ws`, token: await mintToken({ JWT_HS256_SECRET: secret }, user), deviceId: "phone" });
      sockets.push(s);
      return s;
    };
    const [a, b] = [await open(alice), await open(bob)];
    const { conversation } = await a.call("getOrCreateDirectConversation", { peerId: bob });
    const conversationId = conversation?.conversationId ?? assert.fail("no conversation");
    const sent = await a.call("sendMessage", { conversationId, clientMsgId: "m1", text: "hello from the chart" });
    assert.equal(Number(sent.seq), 1);
    await b.until((events) => events.some((e) => e.kind.case === "message" && e.kind.value.message?.content.value === "hello from the chart"), 20_000);
  });
});
