// WebSocket framing rules, pure: subprotocols, decoding a client frame (binary protobuf or
// canonical JSON text) and the error frame.
import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { ClientFrameSchema, ServerFrameSchema, type ClientFrame, type ServerFrame } from "../../../../gen/chat/api/v1/frames_pb.js";

export const PROTO = "chat.v1.proto";
export const JSON_TEXT = "chat.v1.json";
export type Encoding = typeof PROTO | typeof JSON_TEXT;

/** The subprotocol to speak: binary protobuf when offered, JSON text otherwise. */
export const chooseEncoding = (offered: Set<string>): Encoding => (offered.has(PROTO) ? PROTO : JSON_TEXT);

const utf8 = new TextDecoder("utf-8", { fatal: true });

export class FrameError extends Error {
  constructor(
    message: string,
    readonly code: Code = Code.InvalidArgument,
  ) {
    super(message);
  }
}

/** Decodes one client frame; a malformed one, an unknown type or invalid UTF-8 is a FrameError. */
export function decodeClientFrame(data: Buffer, isBinary: boolean): ClientFrame {
  let frame: ClientFrame;
  if (isBinary) {
    try {
      frame = fromBinary(ClientFrameSchema, data);
    } catch (err) {
      // The decoder checks every string as it reads it (proto3's utf8_validation = VERIFY): invalid
      // UTF-8 anywhere in the frame throws here, nothing is decoded with replacement characters.
      if ((err as { code?: unknown }).code === "ERR_ENCODING_INVALID_ENCODED_DATA") throw new FrameError("invalid UTF-8 in a string field");
      throw new FrameError(`malformed frame: ${(err as Error).message}`);
    }
  } else {
    let text: string;
    try {
      text = utf8.decode(data);
    } catch {
      throw new FrameError("invalid UTF-8 in a text frame");
    }
    try {
      frame = fromJsonString(ClientFrameSchema, text);
    } catch (err) {
      throw new FrameError(`malformed frame: ${(err as Error).message}`);
    }
  }
  if (frame.request.case === undefined) throw new FrameError("unknown or missing frame type");
  return frame;
}

export function encodeServerFrame(frame: ServerFrame, encoding: Encoding): Buffer | string {
  return encoding === PROTO ? Buffer.from(toBinary(ServerFrameSchema, frame)) : toJsonString(ServerFrameSchema, frame);
}

/**
 * Server-to-client WebSocket frames (RFC 6455 section 5.2: final, unmasked; binary for protobuf,
 * text for JSON), one per payload, back to back in one buffer: what a socket is sent for a batch
 * of events.
 */
export function webSocketFrames(payloads: readonly (Buffer | string)[], encoding: Encoding): Buffer {
  const opcode = encoding === PROTO ? 0x2 : 0x1;
  const bodies = payloads.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p));
  const headerBytes = (n: number) => (n < 126 ? 2 : n < 65_536 ? 4 : 10);
  const out = Buffer.allocUnsafe(bodies.reduce((sum, b) => sum + headerBytes(b.length) + b.length, 0));
  let at = 0;
  for (const body of bodies) {
    const n = body.length;
    out[at++] = 0x80 | opcode;
    if (n < 126) out[at++] = n;
    else if (n < 65_536) {
      out[at++] = 126;
      at = out.writeUInt16BE(n, at);
    } else {
      out[at++] = 127;
      at = out.writeBigUInt64BE(BigInt(n), at);
    }
    at += body.copy(out, at);
  }
  return out;
}

/** The error answer to a frame: the Connect code name ("invalid_argument"), a reason, and a retry hint under load. */
export function errorFrame(requestId: number, code: Code, message: string, retryAfterMs = 0): ServerFrame {
  const name = Code[code].replace(/[A-Z]/g, (c, i: number) => (i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`));
  return create(ServerFrameSchema, { requestId, response: { case: "error", value: { code: name, message, retryAfterMs } } });
}
