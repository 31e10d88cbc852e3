// The unary gRPC path (grpc-unary.ts) against connect's own: every client on every server gives the
// same answer (message, handler-set headers and trailers, error code, message, metadata and
// details, a handler bug as "internal", request validation), deadlines and cancellations reach the
// handler, an oversized request is refused, an absent peer is Unavailable, and what the fast path
// does not take (JSON, compressed, streaming, unknown paths) is left to connect.
import assert from "node:assert/strict";
import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createConnectRouter, type Client, type HandlerContext, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { GetMembershipRequestSchema, GroupService, MembershipSchema, type GetMembershipRequest } from "../../../gen/chat/group/v1/group_pb.js";
import { createUnaryGrpcTransport, UnaryGrpcRoutes } from "../src/grpc-unary.js";
import { validationInterceptor } from "../src/validation.js";

/** What the handler saw of its last aborted call. */
const aborted: { reason?: unknown } = {};

/** GroupService.GetMembership, acting on the conversation id it is given. */
async function getMembership(req: GetMembershipRequest, ctx: HandlerContext) {
  ctx.responseHeader.set("x-echo", ctx.requestHeader.get("x-in") ?? "");
  ctx.responseTrailer.set("x-done", "yes");
  switch (req.conversationId) {
    case "missing":
      throw new ConnectError("no such conversation", Code.NotFound, { "x-why": "gone" }, [{ desc: MembershipSchema, value: { conversationId: "missing" } }]);
    case "bug":
      throw new Error("a bug");
    case "wait":
      await new Promise<void>((resolve) => {
        ctx.signal.addEventListener("abort", () => {
          aborted.reason = ctx.signal.reason;
          resolve();
        });
      });
      throw ConnectError.from(ctx.signal.reason);
    default:
      return { membership: { conversationId: req.conversationId, userId: req.userId, member: true, visibleFromSeq: 7n } };
  }
}

const READ_MAX = 64 * 1024;
const interceptors = [validationInterceptor];

interface Servers {
  /** Answers only through UnaryGrpcRoutes (anything it leaves is a 404). */
  fast: string;
  /** connect-node's adapter alone. */
  connect: string;
  routes: UnaryGrpcRoutes;
  close(): void;
}

async function listen(handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void): Promise<{ url: string; server: http2.Http2Server }> {
  const server = http2.createServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function startServers(): Promise<Servers> {
  const routes = new UnaryGrpcRoutes(interceptors, READ_MAX);
  routes.recording(createConnectRouter()).service(GroupService, { getMembership });
  const fast = await listen((req, res) => {
    if (routes.handle(req, res)) return;
    res.writeHead(404);
    res.end();
  });
  const adapter = connectNodeAdapter({ interceptors, readMaxBytes: READ_MAX, routes: (r) => r.service(GroupService, { getMembership }) });
  const connect = await listen(adapter);
  return {
    fast: fast.url,
    connect: connect.url,
    routes,
    close() {
      fast.server.close();
      connect.server.close();
    },
  };
}

const lean = (url: string): Transport => createUnaryGrpcTransport({ baseUrl: url, sessionManager: new Http2SessionManager(url), interceptors: [], defaultTimeoutMs: 5_000, readMaxBytes: READ_MAX });
const connectGrpc = (url: string): Transport => createGrpcTransport({ baseUrl: url, acceptCompression: [] });

/** A call's outcome, in the terms a caller sees. */
async function outcome(client: Client<typeof GroupService>, conversationId: string) {
  const headers: { header?: Headers; trailer?: Headers } = {};
  try {
    const res = await client.getMembership(
      { conversationId, userId: "u1" },
      { headers: { "x-in": "hello" }, onHeader: (h) => (headers.header = h), onTrailer: (t) => (headers.trailer = t) },
    );
    return { ok: { userId: res.membership?.userId, seq: res.membership?.visibleFromSeq }, echo: headers.header?.get("x-echo"), done: headers.trailer?.get("x-done") };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: Code[e.code], message: e.rawMessage, why: e.metadata.get("x-why"), details: e.findDetails(MembershipSchema).map((d) => d.conversationId) };
  }
}

describe("unary gRPC path", () => {
  let servers: Servers;
  before(async () => {
    servers = await startServers();
  });
  after(() => servers.close());

  it("answers every case as connect's gRPC handler does, to its own client and to connect's", async () => {
    const cases = ["c1", "missing", "bug", ""];
    const expected = {
      c1: { ok: { userId: "u1", seq: 7n }, echo: "hello", done: "yes" },
      missing: { code: "NotFound", message: "no such conversation", why: "gone", details: ["missing"] },
      bug: { code: "Internal", message: "internal error", why: null, details: [] },
    };
    for (const conversationId of cases) {
      const seen = [];
      for (const [name, transport] of [
        ["lean -> fast", lean(servers.fast)],
        ["lean -> connect", lean(servers.connect)],
        ["connect -> fast", connectGrpc(servers.fast)],
        ["connect -> connect", connectGrpc(servers.connect)],
      ] as const) {
        seen.push({ name, got: await outcome(createClient(GroupService, transport), conversationId) });
      }
      const [first] = seen;
      assert.ok(first !== undefined);
      for (const s of seen) assert.deepEqual(s.got, first.got, `${s.name} answers "${conversationId}" as ${first.name} does`);
      if (conversationId in expected) assert.deepEqual(first.got, expected[conversationId as keyof typeof expected]);
      // An empty id fails the request's validation rules.
      else assert.equal((first.got as { code?: string }).code, "InvalidArgument");
    }
  });

  it("a deadline ends the call with DeadlineExceeded at the caller, and the handler's signal at the server", async () => {
    aborted.reason = undefined;
    const client = createClient(GroupService, lean(servers.fast));
    const started = Date.now();
    await assert.rejects(client.getMembership({ conversationId: "wait", userId: "u1" }, { timeoutMs: 150 }), (err: unknown) => ConnectError.from(err).code === Code.DeadlineExceeded);
    assert.ok(Date.now() - started < 2_000, "ended at its deadline");
    // The server's own deadline, from grpc-timeout, with a caller that waits past it.
    aborted.reason = undefined;
    const session = http2.connect(servers.fast);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/chat.group.v1.GroupService/GetMembership", "content-type": "application/grpc", "grpc-timeout": "100m", te: "trailers" });
      const payload = toBinary(GetMembershipRequestSchema, create(GetMembershipRequestSchema, { conversationId: "wait", userId: "u1" }));
      const body = Buffer.alloc(5 + payload.length);
      body.writeUInt32BE(payload.length, 1);
      body.set(payload, 5);
      stream.end(body);
      stream.resume();
      const [trailers] = (await once(stream, "trailers")) as [http2.IncomingHttpHeaders];
      assert.equal(trailers["grpc-status"], String(Code.DeadlineExceeded));
      assert.equal(ConnectError.from(aborted.reason).code, Code.DeadlineExceeded, "the handler's signal carries the deadline");
    } finally {
      session.close();
    }
  });

  it("a caller's abort cancels the call, and the handler sees the client go", async () => {
    aborted.reason = undefined;
    const client = createClient(GroupService, lean(servers.fast));
    const controller = new AbortController();
    const call = client.getMembership({ conversationId: "wait", userId: "u1" }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(call, (err: unknown) => ConnectError.from(err).code === Code.Canceled);
    for (let i = 0; i < 50 && aborted.reason === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(ConnectError.from(aborted.reason).code, Code.Canceled);
  });

  it("refuses a request larger than its read limit with ResourceExhausted", async () => {
    const client = createClient(GroupService, lean(servers.fast));
    const big = "x".repeat(READ_MAX + 10);
    await assert.rejects(client.getMembership({ conversationId: "c1", userId: big }), (err: unknown) => ConnectError.from(err).code === Code.ResourceExhausted);
    // The connection still serves the next call.
    const res = await client.getMembership({ conversationId: "c1", userId: "u1" });
    assert.equal(res.membership?.userId, "u1");
  });

  it("a peer that is not listening: Unavailable", async () => {
    const { url, server } = await listen(() => undefined);
    server.close();
    await once(server, "close");
    const client = createClient(GroupService, lean(url));
    await assert.rejects(client.getMembership({ conversationId: "c1", userId: "u1" }), (err: unknown) => ConnectError.from(err).code === Code.Unavailable);
  });

  it("leaves JSON, compressed and unknown calls to connect", async () => {
    // JSON over gRPC and the Connect protocol answer from connect's adapter (a 404 on the fast-only server).
    for (const transport of [createGrpcTransport({ baseUrl: servers.fast, useBinaryFormat: false }), createConnectTransport({ baseUrl: servers.fast, httpVersion: "2" })]) {
      await assert.rejects(createClient(GroupService, transport).getMembership({ conversationId: "c1", userId: "u1" }), (err: unknown) => err instanceof ConnectError);
    }
    for (const transport of [createGrpcTransport({ baseUrl: servers.connect, useBinaryFormat: false }), createConnectTransport({ baseUrl: servers.connect, httpVersion: "2" })]) {
      const res = await createClient(GroupService, transport).getMembership({ conversationId: "c1", userId: "u1" });
      assert.equal(res.membership?.userId, "u1");
    }
    // A method the service does not implement, and a compressed request, are not taken.
    const taken = (path: string, headers: http2.IncomingHttpHeaders) => servers.routes.handle({ method: "POST", url: path, headers } as http2.Http2ServerRequest, {} as http2.Http2ServerResponse);
    assert.equal(taken("/chat.group.v1.GroupService/CreateGroup", { "content-type": "application/grpc" }), false);
    assert.equal(taken("/chat.group.v1.GroupService/GetMembership", { "content-type": "application/grpc", "grpc-encoding": "gzip" }), false);
    assert.equal(taken("/chat.group.v1.GroupService/GetMembership", { "content-type": "application/grpc+json" }), false);
  });
});
