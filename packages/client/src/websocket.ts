// A small WebSocket client of the public API (Node, `ws`): requests by frame with their answers
// matched by request_id, events as they arrive. Used by the tests and the load generator; it is
// also a reference for client developers.
import { create, fromBinary, fromJsonString, toBinary, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { WebSocket } from "ws";
import type { ChatService } from "../../../gen/chat/api/v1/api_pb.js";
import type { Event } from "../../../gen/chat/api/v1/events_pb.js";
import { ClientFrameSchema, ServerFrameSchema, type ClientFrame, type ServerFrame } from "../../../gen/chat/api/v1/frames_pb.js";

type Request = NonNullable<ClientFrame["request"]["case"]>;
type Method<K extends Request> = (typeof ChatService.method)[K];
export type RequestInit<K extends Request> = MessageInitShape<Method<K>["input"]>;
export type ResponseOf<K extends Request> = Extract<ServerFrame["response"], { case: K }>["value"];

export class FrameError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** Under load: try again no sooner than this (0: no hint). */
    readonly retryAfterMs = 0,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface ConnectOptions {
  /** ws://host:port/ws */
  url: string;
  token: string;
  deviceId: string;
  /** "chat.v1.proto" (binary, default) or "chat.v1.json". */
  protocol?: "chat.v1.proto" | "chat.v1.json";
  /** Source address to connect from (several 127.0.0.x for many clients). */
  localAddress?: string;
  /**
   * Source port (with localAddress). A load generator with tens of thousands of sockets per source
   * address names the port itself: the kernel's search for a free one (port 0) then takes
   * milliseconds per socket, inside the event loop.
   */
  localPort?: number;
  onEvent?: (event: Event, receivedAt: number) => void;
}

/** The edge refused the WebSocket handshake (401, 503 while draining or too busy to take more). */
export class HandshakeError extends Error {
  constructor(
    readonly status: number,
    /** From Retry-After, when the edge gave one. */
    readonly retryAfterMs: number,
  ) {
    super(`handshake refused: HTTP ${status}`);
  }
}

export class ChatSocket {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (f: ServerFrame) => void; reject: (e: Error) => void }>();
  readonly events: Event[] = [];
  private waiters: (() => void)[] = [];

  private constructor(
    readonly ws: WebSocket,
    private readonly binary: boolean,
    private readonly onEvent?: (event: Event, receivedAt: number) => void,
  ) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const receivedAt = performance.now();
      const frame = isBinary ? fromBinary(ServerFrameSchema, data) : fromJsonString(ServerFrameSchema, data.toString("utf8"));
      if (frame.response.case === "event") {
        if (this.onEvent !== undefined) this.onEvent(frame.response.value, receivedAt);
        else this.events.push(frame.response.value);
        for (const w of this.waiters.splice(0)) w();
        return;
      }
      const p = this.pending.get(frame.requestId);
      if (p === undefined) return;
      this.pending.delete(frame.requestId);
      if (frame.response.case === "error") p.reject(new FrameError(frame.response.value.code, frame.response.value.message, frame.response.value.retryAfterMs));
      else p.resolve(frame);
    });
    ws.on("close", () => {
      for (const p of this.pending.values()) p.reject(new Error("connection closed"));
      this.pending.clear();
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static connect(opts: ConnectOptions): Promise<ChatSocket> {
    const url = new URL(opts.url);
    url.searchParams.set("access_token", opts.token);
    url.searchParams.set("device_id", opts.deviceId);
    const protocol = opts.protocol ?? "chat.v1.proto";
    const ws = new WebSocket(url, [protocol], { perMessageDeflate: false, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}), ...(opts.localPort ? { localPort: opts.localPort } : {}) });
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(new ChatSocket(ws, protocol === "chat.v1.proto", opts.onEvent)));
      ws.once("unexpected-response", (_req, res) => reject(new HandshakeError(res.statusCode ?? 0, Number(res.headers["retry-after"] ?? 0) * 1000 || 0)));
      ws.once("error", reject);
    });
  }

  /** Sends one request frame and resolves with its answer (rejects with FrameError on an error frame). */
  async call<K extends Request>(kind: K, value: RequestInit<K>): Promise<ResponseOf<K>> {
    // A closed socket never answers: fail now rather than wait forever.
    if (this.ws.readyState !== WebSocket.OPEN) throw new Error("connection closed");
    const requestId = this.nextId++;
    const frame = create(ClientFrameSchema, { requestId, request: { case: kind, value } as never });
    const answer = new Promise<ServerFrame>((resolve, reject) => this.pending.set(requestId, { resolve, reject }));
    this.ws.send(this.binary ? toBinary(ClientFrameSchema, frame) : toJsonString(ClientFrameSchema, frame));
    return (await answer).response.value as ResponseOf<K>;
  }

  /** Waits until `predicate` holds over the events received so far. */
  async until(predicate: (events: Event[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      if (Date.now() > deadline || this.ws.readyState !== WebSocket.OPEN) throw new Error(`condition not met within ${timeoutMs} ms (${this.events.length} events)`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((r) => {
      this.ws.once("close", () => r());
      this.ws.close();
    });
  }
}
