// Peer clients: a session the session manager has left, destroyed with an error (its keepalive
// PING timed out), must not take the process down; calls ask for no compression.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type ClientHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { Http2SessionManager } from "@connectrpc/connect-node";
import { Health } from "../../../gen/grpc/health/v1/health_pb.js";
import { GuardedSessionManager, ignoreLeftSessionError, peerClient } from "../src/clients.js";

/** Opens a session through `manager`, then takes the manager's own "error" listeners off, as it does when it leaves the session. */
async function leftSession(manager: Http2SessionManager): Promise<ClientHttp2Session> {
  const stream = await manager.request("POST", "/echo", {}, {});
  const session = stream.session as ClientHttp2Session;
  stream.end();
  stream.resume();
  await once(stream, "close");
  for (const l of session.listeners("error")) if (l !== ignoreLeftSessionError) session.off("error", l as () => void);
  return session;
}

describe("peer client sessions", () => {
  it("a session left by the manager still has a listener for the error it is destroyed with", async () => {
    const server = createServer((_req, res) => res.end("ok"));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      // The hazard: connect-node's own manager leaves nothing listening (the error would be uncaught).
      const plain = new Http2SessionManager(url, { pingIntervalMs: 10_000 });
      const bare = await leftSession(plain);
      assert.equal(bare.listenerCount("error"), 0);
      bare.destroy();
      // The guard: its listener stays, so the destroy below is heard, and the process goes on.
      const guarded = new GuardedSessionManager(url, { pingIntervalMs: 10_000 });
      const session = await leftSession(guarded);
      assert.equal(session.listenerCount("error"), 1);
      const closed = new Promise((resolve) => session.once("close", resolve));
      session.destroy(new Error("PING timed out"));
      await closed;
      assert.equal(session.destroyed, true);
    } finally {
      server.close();
    }
  });

  it("a peer call accepts no compressed answer and sends an uncompressed request", async () => {
    const seen: Record<string, unknown>[] = [];
    const server = createServer((req, res) => {
      seen.push({ ...req.headers });
      res.writeHead(200, { "content-type": "application/grpc", "grpc-status": "12", "grpc-message": "test" });
      res.end();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const client = peerClient(Health, `127.0.0.1:${(server.address() as AddressInfo).port}`);
      await assert.rejects(client.check({ service: "" }));
      const [headers] = seen;
      assert.ok(headers !== undefined, "the call reached the server");
      assert.equal(headers["grpc-accept-encoding"] ?? "identity", "identity");
      assert.equal(headers["grpc-encoding"] ?? "identity", "identity");
    } finally {
      server.close();
    }
  });
});
