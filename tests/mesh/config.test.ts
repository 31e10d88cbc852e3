// Bad configuration stops a process at startup with a message naming the setting.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const CHAT = fileURLToPath(new URL("../../cmd/chat.js", import.meta.url));

function start(service: string, env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CHAT, service], { env: { PATH: process.env["PATH"] ?? "", ...env }, encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

describe("bad configuration", () => {
  it("a missing required setting stops the process, naming it", () => {
    const r = start("message-store", {});
    assert.equal(r.status, 2);
    assert.match(r.stderr, /GROUP_SERVICE_ADDR: required/);
  });

  it("an unknown driver stops the process, naming the setting and the choices", () => {
    const r = start("message-store", { GROUP_SERVICE_ADDR: "127.0.0.1:1", STORE_DRIVER: "mongodb" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /STORE_DRIVER: unknown driver; expected one of: embedded, cassandra \(got "mongodb"\)/);
  });

  it("a driver's own required setting is named with the reason", () => {
    const r = start("connection", { STORE_DRIVER: "redis" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /REDIS_URL: required when STORE_DRIVER=redis/);
  });

  it("an invalid value is refused with what was given", () => {
    const r = start("routing", { PORT: "http" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /PORT: .*\(got "http"\)/);
  });

  it("a linger out of its range is refused, naming the setting", () => {
    const bus = start("routing", { GROUP_SERVICE_ADDR: "127.0.0.1:1", CONNECTION_SERVICE_ADDR: "127.0.0.1:1", KAFKA_LINGER_MS: "-1" });
    assert.equal(bus.status, 2);
    assert.match(bus.stderr, /KAFKA_LINGER_MS: .*\(got "-1"\)/);
    const writes = start("message-store", { GROUP_SERVICE_ADDR: "127.0.0.1:1", CASSANDRA_WRITE_LINGER_MS: "5000" });
    assert.equal(writes.status, 2);
    assert.match(writes.stderr, /CASSANDRA_WRITE_LINGER_MS: .*\(got "5000"\)/);
  });

  it("an unknown service name prints the usage", () => {
    const r = start("mailer", {});
    assert.equal(r.status, 2);
    assert.match(r.stderr, /usage: chat <command>/);
  });
});
