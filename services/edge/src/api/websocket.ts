// The WebSocket endpoint (/ws): a browser-friendly handshake (token in the access_token query
// parameter or an Authorization header; device in device_id), ClientFrame / ServerFrame in binary
// protobuf ("chat.v1.proto") or canonical JSON ("chat.v1.json"), ping/pong heartbeats, a frame
// size limit enforced while reading, and a flood limit. A bad frame gets an error frame; the
// connection stays usable. An idle connection costs one small object (WsClient) besides the
// socket: the event handlers are shared, and the heartbeats are spread over the ping interval.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { ChatService } from "../../../../gen/chat/api/v1/api_pb.js";
import type { Event } from "../../../../gen/chat/api/v1/events_pb.js";
import { ServerFrameSchema, type ServerFrame } from "../../../../gen/chat/api/v1/frames_pb.js";
import type { Logger } from "../../../../packages/runtime/src/log.js";
import { retryAfterMs } from "../../../../packages/runtime/src/errors.js";
import { TokenBucket } from "../../../../packages/runtime/src/rate.js";
import { tracer } from "../../../../packages/runtime/src/telemetry/index.js";
import { validateRequest } from "../../../../packages/runtime/src/validation.js";
import type { Verify } from "../auth/verify.js";
import type { ClientConnection } from "../domain/connections.js";
import { chooseEncoding, decodeClientFrame, encodeServerFrame, errorFrame, FrameError, webSocketFrames, type Encoding } from "../domain/frames.js";
import type { SessionManager } from "../sessions.js";
import { bearerToken, parseDeviceId, type Caller } from "./caller.js";
import type { Operations, UnaryMethod } from "./operations.js";

export interface WebSocketOptions {
  ops: Operations;
  sessions: SessionManager;
  verify: Verify;
  logger: Logger;
  maxFrameBytes: number;
  /** Each client is pinged once per interval; one that has not answered the previous ping is dropped. */
  pingIntervalMs: number;
  /** Frames per second per connection, and the burst allowed. */
  frameRate: number;
  frameBurst: number;
  /** Bytes queued for a slow client before it is disconnected (it resyncs on reconnect). */
  maxBufferedBytes: number;
  /** True while the edge drains: new clients are sent elsewhere (503). */
  draining: () => boolean;
}

/** The TCP socket under a WebSocket (ws keeps it as `_socket`; it has no public accessor). */
const socketOf = (ws: WebSocket): Socket | undefined => (ws as unknown as { _socket?: Socket })._socket;

/** Heartbeat slices per ping interval: each tick pings one slice of the clients. */
const SLICES = 20;

/**
 * A request frame's SERVER span (a trace of its own, like a Connect call without a traceparent):
 * the sender's send in the trace that follows a message to its recipients.
 */
async function inFrameSpan<T>(method: string, fn: () => Promise<T>): Promise<T> {
  const span = tracer("chat.edge").startSpan(
    `${ChatService.typeName}/${method}`,
    { kind: SpanKind.SERVER, attributes: { "rpc.system": "websocket", "rpc.service": ChatService.typeName, "rpc.method": method } },
    ROOT_CONTEXT,
  );
  try {
    return await context.with(trace.setSpan(ROOT_CONTEXT, span), fn);
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: ConnectError.from(err).rawMessage });
    throw err;
  } finally {
    span.end();
  }
}

/** An event's frame in one encoding, encoded once however many connections it goes to. */
const encodedEvents = new WeakMap<Event, Partial<Record<Encoding, Buffer | string>>>();
function encodedEvent(event: Event, encoding: Encoding): Buffer | string {
  let byEncoding = encodedEvents.get(event);
  if (byEncoding === undefined) encodedEvents.set(event, (byEncoding = {}));
  return (byEncoding[encoding] ??= encodeServerFrame(create(ServerFrameSchema, { response: { case: "event", value: event } }), encoding));
}

/**
 * A list of events as WebSocket frames in one buffer, built once per encoding however many
 * connections get that list (a Deliver hands them all the same array).
 */
const framedLists = new WeakMap<readonly Event[], Partial<Record<Encoding, Buffer>>>();
function framedEvents(events: readonly Event[], encoding: Encoding): Buffer {
  let byEncoding = framedLists.get(events);
  if (byEncoding === undefined) framedLists.set(events, (byEncoding = {}));
  return (byEncoding[encoding] ??= webSocketFrames(
    events.map((e) => encodedEvent(e, encoding)),
    encoding,
  ));
}

/** One WebSocket client: what the edge keeps per connection. */
class WsClient implements ClientConnection {
  /** Answered the last ping (or said anything) since the previous heartbeat. */
  alive = true;
  lastActiveMs = Date.now();
  /** Registered with the connection service and presence; frames wait until then. */
  opened: Promise<void> | undefined;
  readonly flood: TokenBucket;

  constructor(
    readonly ws: WebSocket,
    readonly caller: Caller,
    readonly sessionId: string,
    readonly encoding: Encoding,
    readonly slice: number,
    readonly gw: Gateway,
  ) {
    this.flood = new TokenBucket(gw.opts.frameRate, gw.opts.frameBurst);
  }

  get userId(): string {
    return this.caller.userId;
  }

  get deviceId(): string {
    return this.caller.deviceId;
  }

  send(events: readonly Event[]): boolean {
    const ws = this.ws;
    const socket = socketOf(ws);
    if (!this.writable() || socket === undefined) return false;
    // Ready-made frames straight to the socket: one write for the lot. Safe beside ws's own sends
    // because its sender writes each frame at once (no compression, no Blob data, so it never
    // holds frames back in a queue of its own).
    socket.write(framedEvents(events, this.encoding));
    return true;
  }

  /** Open, and not so far behind that it should rather reconnect (then it is closed). */
  private writable(): boolean {
    const ws = this.ws;
    if (ws.readyState !== ws.OPEN) return false;
    if (ws.bufferedAmount > this.gw.opts.maxBufferedBytes) {
      ws.close(1013, "too slow: reconnect and resync");
      return false;
    }
    return true;
  }

  write(data: Buffer | string): boolean {
    if (!this.writable()) return false;
    this.ws.send(data);
    return true;
  }

  answer(frame: ServerFrame): void {
    this.write(encodeServerFrame(frame, this.encoding));
  }

  drain(reason: string, withinMs: number): void {
    this.answer(create(ServerFrameSchema, { response: { case: "event", value: { kind: { case: "reconnect", value: { reason, withinMs } } } } }));
    setTimeout(() => this.ws.close(1012, "edge draining"), withinMs).unref();
  }

  /** Pings the client; false (and the connection cut) when it has not answered the previous ping. */
  heartbeat(): boolean {
    if (!this.alive) {
      this.ws.terminate(); // no pong since the last ping: a dead peer
      return false;
    }
    this.alive = false;
    this.ws.ping();
    return true;
  }

  async handle(data: Buffer, isBinary: boolean): Promise<void> {
    this.alive = true;
    this.lastActiveMs = Date.now();
    let requestId = 0;
    try {
      if (!this.flood.take()) throw new FrameError("too many frames: slow down", Code.ResourceExhausted);
      const frame = decodeClientFrame(data, isBinary);
      requestId = frame.requestId;
      const name = frame.request.case as UnaryMethod;
      const method = ChatService.method[name];
      validateRequest(method.input, frame.request.value as never);
      if (this.opened !== undefined) await this.opened;
      const result = await inFrameSpan(method.name, () => (this.gw.opts.ops[name] as (c: Caller, r: unknown) => Promise<object>)(this.caller, frame.request.value));
      this.answer(create(ServerFrameSchema, { requestId, response: { case: name, value: create(method.output, result as never) } as never }));
    } catch (err) {
      if (err instanceof FrameError) this.answer(errorFrame(requestId, err.code, err.message));
      else {
        const e = ConnectError.from(err);
        if (e.code === Code.Internal || e.code === Code.Unknown) this.gw.opts.logger.error({ err, userId: this.caller.userId }, "frame failed");
        this.answer(errorFrame(requestId, e.code, e.rawMessage, retryAfterMs(e)));
      }
    }
  }
}

interface Gateway {
  opts: WebSocketOptions;
  /** The heartbeat wheel: every client in one slice. */
  wheel: Set<WsClient>[];
}

// Listeners shared by every connection (`this` is the socket): no closures per client.
const clientOf = new WeakMap<WebSocket, WsClient>();
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  void clientOf.get(this)?.handle(data, isBinary);
}
function onPong(this: WebSocket): void {
  const client = clientOf.get(this);
  if (client === undefined) return;
  client.alive = true;
  client.lastActiveMs = Date.now();
}
function onClose(this: WebSocket): void {
  const client = clientOf.get(this);
  if (client === undefined) return;
  client.gw.wheel[client.slice]?.delete(client);
  client.gw.opts.sessions.close(client.sessionId, client.lastActiveMs);
}
function onError(this: WebSocket): void {
  this.terminate();
}

export function createWebSocketGateway(opts: WebSocketOptions) {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxFrameBytes,
    perMessageDeflate: false,
    // Text frames are checked by our own strict decoder, which answers invalid UTF-8 with an
    // error frame instead of failing the connection.
    skipUTF8Validation: true,
    // The gateway keeps its own list of clients (the heartbeat wheel).
    clientTracking: false,
    handleProtocols: (offered) => chooseEncoding(offered),
  });
  const gw: Gateway = { opts, wheel: Array.from({ length: SLICES }, () => new Set<WsClient>()) };
  let hand = 0;
  let nextSlice = 0;
  const pinger = setInterval(() => {
    const slice = gw.wheel[hand] ?? new Set<WsClient>();
    hand = (hand + 1) % SLICES;
    let dropped = 0;
    for (const client of slice) if (!client.heartbeat()) dropped++;
    if (dropped > 0) opts.logger.info({ dropped }, "closed clients that missed a pong");
  }, opts.pingIntervalMs / SLICES);
  pinger.unref();

  async function authenticate(req: IncomingMessage): Promise<Caller> {
    const url = new URL(req.url ?? "/", "http://edge");
    const token = url.searchParams.get("access_token") ?? bearerToken(req.headers.authorization);
    const identity = await opts.verify(token);
    return { userId: identity.userId, deviceId: parseDeviceId(url.searchParams.get("device_id") ?? (req.headers["chat-device-id"] as string | undefined)) };
  }

  function serve(ws: WebSocket, caller: Caller): void {
    const slice = nextSlice;
    nextSlice = (nextSlice + 1) % SLICES;
    const client = new WsClient(ws, caller, opts.sessions.newSessionId(), (ws.protocol || "chat.v1.json") as Encoding, slice, gw);
    clientOf.set(ws, client);
    gw.wheel[slice]?.add(client);
    ws.on("message", onMessage);
    ws.on("pong", onPong);
    ws.on("close", onClose);
    ws.on("error", onError);
    client.opened = opts.sessions.open(caller, client).then(
      () => {
        client.opened = undefined;
      },
      (err: unknown) => {
        opts.logger.warn({ err }, "session registration failed");
        ws.close(1011, "session registration failed");
      },
    );
  }

  return {
    /** The edge's HTTP/1.1 upgrade handler. */
    onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      if (new URL(req.url ?? "/", "http://edge").pathname !== "/ws") {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
        return;
      }
      if (opts.draining()) {
        socket.end("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nthis edge is draining: ask AssignEdge for another\n");
        return;
      }
      // The place is held from here (authentication is asynchronous) until the session is opened,
      // or given back when the client goes away before that (refused, or a failed handshake).
      const release = opts.sessions.reserve();
      if (release === undefined) {
        socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: ${opts.sessions.retryAfterSeconds()}\r\nContent-Type: text/plain\r\n\r\ntoo many clients connecting at once: retry later\n`);
        return;
      }
      socket.once("close", release);
      authenticate(req).then(
        (caller) =>
          wss.handleUpgrade(req, socket, head, (ws) => {
            serve(ws, caller);
            socket.off("close", release);
            release();
          }),
        (err: unknown) => {
          const e = ConnectError.from(err);
          const status = e.code === Code.Unauthenticated ? "401 Unauthorized" : "400 Bad Request";
          socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${e.rawMessage}\n`);
        },
      );
    },
    get size(): number {
      return gw.wheel.reduce((n, s) => n + s.size, 0);
    },
    close(): void {
      clearInterval(pinger);
      for (const slice of gw.wheel) for (const client of slice) client.ws.terminate();
      wss.close();
    },
  };
}
