// The container image, checked without a Docker engine: the Dockerfile is parsed and held to its
// promises (pinned bases, non-root, the one entry point `make cluster` uses, sources that exist
// and reach the build context through .dockerignore).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SERVICE_NODE_OPTIONS } from "../../cmd/cluster.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, "utf8");

interface Instruction {
  op: string;
  args: string;
}

/** Instructions of a Dockerfile: comments dropped, continuation lines joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) continue;
    if (line.startsWith("#")) continue;
    pending += `${line.replace(/\\$/, "").trim()} `;
    if (line.endsWith("\\")) continue;
    const m = /^(\S+)\s+(.*)$/.exec(pending.trim());
    if (m !== null) out.push({ op: (m[1] ?? "").toUpperCase(), args: (m[2] ?? "").trim() });
    pending = "";
  }
  return out;
}

const instructions = parseDockerfile(read("Dockerfile"));
const stages = instructions.filter((i) => i.op === "FROM");
const lastStageAt = instructions.lastIndexOf(stages[stages.length - 1] ?? assert.fail("no FROM"));
const runtime = instructions.slice(lastStageAt);

describe("Dockerfile", () => {
  it("is multi-stage, every base pinned to an exact version (no latest, no bare name)", () => {
    assert.ok(stages.length >= 2, "multi-stage");
    const names = new Set<string>();
    for (const from of stages) {
      const [image = "", as, name] = from.args.replace(/^--platform=\S+\s+/, "").split(/\s+/);
      if (!names.has(image)) assert.match(image, /^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$/, `FROM ${image} pins a version`);
      if (as?.toUpperCase() === "AS" && name !== undefined) names.add(name);
    }
  });

  it("runs on the Node version package.json pins", () => {
    const pinned = (JSON.parse(read("package.json")) as { devDependencies: Record<string, string> }).devDependencies["node"];
    for (const from of stages.filter((s) => s.args.startsWith("node:"))) assert.ok(from.args.startsWith(`node:${pinned}-`), `${from.args} is node ${pinned}`);
  });

  it("starts Node with the options the local cluster gives its services (as `make bench` runs its generator)", () => {
    // Quoted in both places (the options are several words), compared as literal text.
    const setting = `NODE_OPTIONS="${SERVICE_NODE_OPTIONS}"`;
    const env = runtime.filter((i) => i.op === "ENV").map((i) => i.args).join(" ");
    assert.ok(` ${env} `.includes(` ${setting} `), `the image's ENV sets ${setting}: ${env}`);
    const bench = /^bench:.*\n((?:\t.*\n)+)/m.exec(read("Makefile"))?.[1] ?? assert.fail("no bench target");
    assert.ok(bench.includes(`${setting} node dist/bench/run.js`), `make bench runs the generator with ${setting}`);
  });

  it("the final image runs as a non-root numeric user", () => {
    const user = runtime.filter((i) => i.op === "USER").pop()?.args ?? assert.fail("no USER in the final stage");
    const [uid = "", gid] = user.split(":");
    assert.match(uid, /^\d+$/, "numeric uid, so Kubernetes runAsNonRoot can verify it");
    assert.notEqual(Number(uid), 0);
    if (gid !== undefined) assert.notEqual(Number(gid), 0);
  });

  it("the entry point is the one `make cluster` uses, and it is in the image", () => {
    const entry = JSON.parse(runtime.find((i) => i.op === "ENTRYPOINT")?.args ?? "null") as string[];
    assert.deepEqual(entry, ["node", "dist/cmd/chat.js"]);
    const cluster = /^cluster:.*\n((?:\t.*\n)+)/m.exec(read("Makefile"))?.[1] ?? assert.fail("no cluster target");
    assert.match(cluster, new RegExp(`${entry.join(" ").replace(/\./g, "\\.")} cluster`), "make cluster runs the same entry point");
    assert.ok(existsSync(`${ROOT}dist/cmd/chat.js`), "dist/cmd/chat.js is built (make build)");
    const copied = runtime.filter((i) => i.op === "COPY").map((i) => i.args.split(/\s+/).at(-2) ?? "");
    assert.ok(copied.some((src) => entry[1]?.startsWith(src.replace(/^\/src\//, "").replace(/\/?$/, "/"))), "dist/cmd is copied into the final image");
  });

  it("every COPY source from the build context exists and passes .dockerignore", () => {
    const ignore = read(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    assert.equal(ignore[0], "*", ".dockerignore starts from nothing and lets sources in by name");
    const allowed = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
    const fromContext = instructions.filter((i) => i.op === "COPY" && !i.args.startsWith("--from="));
    assert.ok(fromContext.length > 0);
    for (const copy of fromContext) {
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith("--"));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(`${ROOT}${src}`), `COPY ${src}: exists`);
        assert.ok(allowed.includes(src.replace(/\/$/, "")), `COPY ${src}: let in by .dockerignore`);
      }
    }
  });

  it("COPY --from names an earlier stage", () => {
    const names: string[] = [];
    for (const i of instructions) {
      if (i.op === "FROM") {
        const m = /\bAS\s+(\S+)$/i.exec(i.args);
        if (m?.[1] !== undefined) names.push(m[1]);
      }
      const from = /^--from=(\S+)/.exec(i.args);
      if (i.op === "COPY" && from !== null) assert.ok(names.includes(from[1] ?? ""), `COPY --from=${from[1]}`);
    }
  });
});
