// The group scenario's member: a minimal WebSocket client of the public API (RFC 6455 over a
// plain socket, binary protobuf subprotocol) for a load generator that shares the 2 cores with the
// mesh it measures. It reads frames in place from the socket's chunks, hands each data frame's bytes
// to `onData` first (the generator spots its own messages there without decoding them), decodes
// only the others (answers to its requests), and answers the edge's pings. The product's client
// (packages/client) stays the reference for client developers; this one only serves the bench.
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { createHash, randomBytes } from "node:crypto";
import { request } from "node:http";
import type { Socket } from "node:net";
import { ClientFrameSchema, ServerFrameSchema, type ServerFrame } from "../gen/chat/api/v1/frames_pb.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export interface RawSocketOptions {
  /** ws://host:port/ws */
  url: string;
  token: string;
  deviceId: string;
  localAddress?: string;
  /** Sees each data frame's payload with the time it was read; true: it was the caller's, skip decoding it. */
  onData: (payload: Buffer, receivedAt: number) => boolean;
}

type Request = NonNullable<MessageInitShape<typeof ClientFrameSchema>["request"]>;

/** One client frame (masked, as RFC 6455 requires of clients). */
function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  const mask = randomBytes(4);
  mask.copy(out, head);
  for (let i = 0; i < n; i++) out[head + 4 + i] = (payload[i] ?? 0) ^ (mask[i & 3] ?? 0);
  return out;
}

export class RawSocket {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (f: ServerFrame) => void; reject: (e: Error) => void }>();
  /** Bytes of a frame that has not fully arrived yet. */
  private rest: Buffer | undefined;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly onData: RawSocketOptions["onData"],
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.read(chunk));
    socket.on("close", () => this.fail(new Error("connection closed")));
    socket.on("error", (err) => this.fail(err));
  }

  static connect(opts: RawSocketOptions): Promise<RawSocket> {
    const url = new URL(opts.url);
    url.searchParams.set("access_token", opts.token);
    url.searchParams.set("device_id", opts.deviceId);
    const key = randomBytes(16).toString("base64");
    return new Promise((resolve, reject) => {
      const req = request({
        host: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
        headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "chat.v1.proto" },
      });
      req.once("upgrade", (res, socket, head) => {
        const accept = createHash("sha1").update(key + GUID).digest("base64");
        if (res.headers["sec-websocket-accept"] !== accept || res.headers["sec-websocket-protocol"] !== "chat.v1.proto") {
          socket.destroy();
          reject(new Error("bad WebSocket handshake answer"));
          return;
        }
        const raw = new RawSocket(socket, opts.onData);
        if (head.length > 0) raw.read(head);
        resolve(raw);
      });
      req.once("response", (res) => reject(new Error(`handshake refused: HTTP ${res.statusCode ?? 0}`)));
      req.once("error", reject);
      req.end();
    });
  }

  /** Sends one request and resolves with its answer (rejects on an error frame). */
  call<K extends Request["case"]>(kind: K, value: Extract<Request, { case: K }>["value"]): Promise<ServerFrame> {
    if (this.closed) return Promise.reject(new Error("connection closed"));
    const requestId = this.nextId++;
    const frame = create(ClientFrameSchema, { requestId, request: { case: kind, value } as Request });
    const answer = new Promise<ServerFrame>((resolve, reject) => this.pending.set(requestId, { resolve, reject }));
    this.socket.write(clientFrame(OP_BINARY, toBinary(ClientFrameSchema, frame)));
    return answer;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.end(clientFrame(OP_CLOSE, Buffer.from([0x03, 0xe8]))); // 1000: normal closure
    });
  }

  private fail(err: Error): void {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Every whole frame in the bytes read so far; a partial one waits for the next chunk. */
  private read(chunk: Buffer): void {
    const at = performance.now();
    const buf = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk]);
    this.rest = undefined;
    let i = 0;
    while (i + 2 <= buf.length) {
      const opcode = (buf[i] ?? 0) & 0x0f;
      let n = (buf[i + 1] ?? 0) & 0x7f;
      let start = i + 2;
      if (n === 126) {
        if (start + 2 > buf.length) break;
        n = buf.readUInt16BE(start);
        start += 2;
      } else if (n === 127) {
        if (start + 8 > buf.length) break;
        n = Number(buf.readBigUInt64BE(start));
        start += 8;
      }
      if (start + n > buf.length) break;
      this.frame(opcode, buf.subarray(start, start + n), at);
      i = start + n;
    }
    if (i < buf.length) this.rest = Buffer.from(buf.subarray(i));
  }

  private frame(opcode: number, payload: Buffer, at: number): void {
    if (opcode === OP_PING) {
      this.socket.write(clientFrame(OP_PONG, payload));
      return;
    }
    if (opcode === OP_CLOSE) {
      this.socket.end();
      return;
    }
    if ((opcode !== OP_BINARY && opcode !== OP_TEXT) || this.onData(payload, at)) return;
    const frame = fromBinary(ServerFrameSchema, payload);
    const p = this.pending.get(frame.requestId);
    if (p === undefined || frame.response.case === "event") return;
    this.pending.delete(frame.requestId);
    if (frame.response.case === "error") p.reject(new Error(`${frame.response.value.code}: ${frame.response.value.message}`));
    else p.resolve(frame);
  }
}
