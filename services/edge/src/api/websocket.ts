// The WebSocket endpoint (/ws): a browser-friendly handshake (token in the access_token query
// parameter or an Authorization header; device in device_id), ClientFrame / ServerFrame in binary
// protobuf ("chat.v1.proto") or canonical JSON ("chat.v1.json"), ping/pong heartbeats, a frame
// size limit enforced while reading, and a flood limit. A bad frame gets an error frame; the
// connection stays usable.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { ChatService } from "../../../../gen/chat/api/v1/api_pb.js";
import type { Event } from "../../../../gen/chat/api/v1/events_pb.js";
import { ServerFrameSchema, type ServerFrame } from "../../../../gen/chat/api/v1/frames_pb.js";
import type { Logger } from "../../../../packages/runtime/src/log.js";
import { tracer } from "../../../../packages/runtime/src/telemetry/index.js";
import { validateRequest } from "../../../../packages/runtime/src/validation.js";
import type { Verify } from "../auth/verify.js";
import { chooseEncoding, decodeClientFrame, encodeServerFrame, errorFrame, FloodLimit, FrameError, type Encoding } from "../domain/frames.js";
import type { SessionManager } from "../sessions.js";
import { bearerToken, parseDeviceId, type Caller } from "./caller.js";
import type { Operations, UnaryMethod } from "./operations.js";

export interface WebSocketOptions {
  ops: Operations;
  sessions: SessionManager;
  verify: Verify;
  logger: Logger;
  maxFrameBytes: number;
  pingIntervalMs: number;
  /** Frames per second per connection, and the burst allowed. */
  frameRate: number;
  frameBurst: number;
  /** Bytes queued for a slow client before it is disconnected (it resyncs on reconnect). */
  maxBufferedBytes: number;
  /** True while the edge drains: new clients are sent elsewhere (503). */
  draining: () => boolean;
}

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

export function createWebSocketGateway(opts: WebSocketOptions) {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxFrameBytes,
    perMessageDeflate: false,
    // Text frames are checked by our own strict decoder, which answers invalid UTF-8 with an
    // error frame instead of failing the connection.
    skipUTF8Validation: true,
    handleProtocols: (offered) => chooseEncoding(offered),
  });
  const alive = new WeakSet<WebSocket>();
  const pinger = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) {
        ws.terminate(); // no pong since the last ping: a dead peer
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, opts.pingIntervalMs);
  pinger.unref();

  async function authenticate(req: IncomingMessage): Promise<Caller> {
    const url = new URL(req.url ?? "/", "http://edge");
    const token = url.searchParams.get("access_token") ?? bearerToken(req.headers.authorization);
    const identity = await opts.verify(token);
    return { userId: identity.userId, deviceId: parseDeviceId(url.searchParams.get("device_id") ?? (req.headers["chat-device-id"] as string | undefined)) };
  }

  /** An event's frame in one encoding, encoded once however many connections it goes to. */
  const encodedEvents = new WeakMap<Event, Partial<Record<Encoding, Buffer | string>>>();
  function encodedEvent(event: Event, encoding: Encoding): Buffer | string {
    let byEncoding = encodedEvents.get(event);
    if (byEncoding === undefined) encodedEvents.set(event, (byEncoding = {}));
    return (byEncoding[encoding] ??= encodeServerFrame(create(ServerFrameSchema, { response: { case: "event", value: event } }), encoding));
  }

  function serve(ws: WebSocket, caller: Caller): void {
    const encoding = (ws.protocol || "chat.v1.json") as Encoding;
    const sessionId = opts.sessions.newSessionId();
    const flood = new FloodLimit(opts.frameRate, opts.frameBurst);
    alive.add(ws);
    ws.on("pong", () => alive.add(ws));
    const sendEncoded = (data: Buffer | string): boolean => {
      if (ws.readyState !== ws.OPEN) return false;
      if (ws.bufferedAmount > opts.maxBufferedBytes) {
        ws.close(1013, "too slow: reconnect and resync");
        return false;
      }
      ws.send(data);
      return true;
    };
    const send = (frame: ServerFrame): boolean => sendEncoded(encodeServerFrame(frame, encoding));
    const opened = opts.sessions.open(caller, {
      sessionId,
      userId: caller.userId,
      deviceId: caller.deviceId,
      send: (event) => sendEncoded(encodedEvent(event, encoding)),
      drain(reason, withinMs) {
        send(create(ServerFrameSchema, { response: { case: "event", value: { kind: { case: "reconnect", value: { reason, withinMs } } } } }));
        setTimeout(() => ws.close(1012, "edge draining"), withinMs).unref();
      },
    });
    opened.catch((err: unknown) => {
      opts.logger.warn({ err }, "session registration failed");
      ws.close(1011, "session registration failed");
    });

    ws.on("message", (data: Buffer, isBinary: boolean) => {
      void (async () => {
        let requestId = 0;
        try {
          if (!flood.take()) throw new FrameError("too many frames: slow down", Code.ResourceExhausted);
          const frame = decodeClientFrame(data, isBinary);
          requestId = frame.requestId;
          const name = frame.request.case as UnaryMethod;
          const method = ChatService.method[name];
          validateRequest(method.input, frame.request.value as never);
          await opened;
          const result = await inFrameSpan(method.name, () => (opts.ops[name] as (c: Caller, r: unknown) => Promise<object>)(caller, frame.request.value));
          send(create(ServerFrameSchema, { requestId, response: { case: name, value: create(method.output, result as never) } as never }));
        } catch (err) {
          if (err instanceof FrameError) send(errorFrame(requestId, err.code, err.message));
          else {
            const e = ConnectError.from(err);
            if (e.code === Code.Internal || e.code === Code.Unknown) opts.logger.error({ err, userId: caller.userId }, "frame failed");
            send(errorFrame(requestId, e.code, e.rawMessage));
          }
        }
      })();
    });
    ws.on("close", () => void opts.sessions.close(sessionId));
    ws.on("error", () => ws.terminate());
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
      authenticate(req).then(
        (caller) => wss.handleUpgrade(req, socket, head, (ws) => serve(ws, caller)),
        (err: unknown) => {
          const e = ConnectError.from(err);
          const status = e.code === Code.Unauthenticated ? "401 Unauthorized" : "400 Bad Request";
          socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${e.rawMessage}\n`);
        },
      );
    },
    get size(): number {
      return wss.clients.size;
    },
    close(): void {
      clearInterval(pinger);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}
